"""User ids and session ids: validation and the `session:{userId}:{epoch ms}` format."""

from __future__ import annotations

import re
from dataclasses import dataclass

USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,128}$"
_USER_ID = re.compile(USER_ID_PATTERN)
_SESSION_ID = re.compile(r"^session:(?P<user>[A-Za-z0-9_.@-]{1,128}):(?P<start>\d{1,16})$")


class InvalidIdError(ValueError):
    """An id that could collide with another user's keys or match a pattern."""


def validate_user_id(user_id: object) -> str:
    """The user id if it is safe to use in keys; else `InvalidIdError` saying why.

    Allowed: 1-128 of letters, digits, `_ . @ -`. Refused: `:` (our key separator),
    `*`, `?`, `[` (patterns), `{}` (hash tags), spaces, control characters, anything else.
    """
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        shown = repr(user_id)[:60]
        raise InvalidIdError(
            f"invalid userId {shown}: use 1-128 characters from A-Z a-z 0-9 _ . @ -"
        )
    return user_id


@dataclass(frozen=True)
class SessionId:
    user_id: str
    start_ms: int

    def __str__(self) -> str:
        return f"session:{self.user_id}:{self.start_ms}"

    @classmethod
    def parse(cls, value: str) -> SessionId:
        match = _SESSION_ID.fullmatch(value)
        if not match:
            raise InvalidIdError(f"invalid sessionId {value[:80]!r}")
        return cls(match["user"], int(match["start"]))


def new_session_id(user_id: str, start_ms: int) -> str:
    return str(SessionId(validate_user_id(user_id), start_ms))


def session_belongs_to(session_id: str, user_id: str) -> bool:
    """Exact owner check: "session:1:..." never matches user "12" or the reverse."""
    try:
        return SessionId.parse(session_id).user_id == user_id
    except InvalidIdError:
        return False
