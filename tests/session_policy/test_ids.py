"""User ids that could collide with keys or patterns are refused; session ids round-trip."""

from __future__ import annotations

import pytest

from session_policy.ids import (
    InvalidIdError,
    SessionId,
    new_session_id,
    session_belongs_to,
    validate_user_id,
)


@pytest.mark.parametrize("user_id", ["alice", "user123", "a.b-c_d@example.com", "x" * 128])
def test_valid(user_id: str) -> None:
    assert validate_user_id(user_id) == user_id


@pytest.mark.parametrize(
    "user_id",
    ["", "a:b", "*", "a*", "user?", "[a]", "{a}", "a b", "../x", "a/b", "x" * 129, "a\x00b",
     "a\nb", "a\tb", "é", "😀", None, 12],
)  # fmt: skip
def test_refused(user_id: object) -> None:
    with pytest.raises(InvalidIdError, match="invalid userId"):
        validate_user_id(user_id)


def test_session_id_format() -> None:
    session_id = new_session_id("alice", 1764050000000)
    assert session_id == "session:alice:1764050000000"
    assert SessionId.parse(session_id) == SessionId("alice", 1764050000000)
    with pytest.raises(InvalidIdError):
        new_session_id("a:b", 1)
    with pytest.raises(InvalidIdError):
        SessionId.parse("session:a:b:1")


def test_ownership_is_exact() -> None:
    assert session_belongs_to("session:12:1764050000000", "12")
    assert not session_belongs_to("session:12:1764050000000", "1")
    assert not session_belongs_to("session:1:1764050000000", "12")
    assert not session_belongs_to("garbage", "12")
