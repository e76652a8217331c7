"""Session records and the limits that end them (pure data and arithmetic, no I/O)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from session_policy.config import SessionSettings

EndReason = Literal["duration", "inactivity", "conversation_limit", "manual", "shutdown"]
END_REASONS: tuple[EndReason, ...] = (
    "duration",
    "inactivity",
    "conversation_limit",
    "manual",
    "shutdown",
)
Backend = Literal["redis", "memory"]


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the unit of every session time)."""
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC, e.g. 2026-11-25T07:00:00.000Z."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def first_deadline(expires_at_ms: int, inactive_at_ms: int) -> tuple[int, EndReason]:
    """The deadline that comes first, and the reason it ends the session by."""
    if inactive_at_ms < expires_at_ms:
        return inactive_at_ms, "inactivity"
    return expires_at_ms, "duration"


def expired_reason(expires_at_ms: int, inactive_at_ms: int, now_ms: int) -> EndReason | None:
    """Which time limit ended a session by `now_ms`, if one did."""
    at, reason = first_deadline(expires_at_ms, inactive_at_ms)
    return reason if now_ms >= at else None


@dataclass(frozen=True)
class SessionLimits:
    """The three limits, in milliseconds and conversations, and the deadlines they set.

    The one definition of when a session expires: the Redis and memory stores, the policy
    nodes and the Lua scripts (which get the deadlines computed here as data) all use it.
    """

    duration_ms: int
    inactivity_ms: int
    max_conversations: int

    def expires_at(self, start_ms: int) -> int:
        """The hard deadline: SESSION_DURATION from the start, whatever the activity."""
        return start_ms + self.duration_ms

    def inactive_at(self, last_activity_ms: int, expires_at_ms: int) -> int:
        """When the session ends for inactivity, unless a message comes first."""
        return min(expires_at_ms, last_activity_ms + self.inactivity_ms)

    def is_full(self, conversation_count: int) -> bool:
        """Whether the session has had all its conversations."""
        return conversation_count >= self.max_conversations

    def new_session(
        self, session_id: str, user_id: str, start_ms: int, backend: Backend
    ) -> Session:
        expires = self.expires_at(start_ms)
        return Session(
            session_id=session_id,
            user_id=user_id,
            start_ms=start_ms,
            last_activity_ms=start_ms,
            conversation_count=0,
            expires_at_ms=expires,
            inactive_at_ms=self.inactive_at(start_ms, expires),
            backend=backend,
        )

    def after_turn(self, session: Session, now_ms: int, conversation_count: int) -> Session:
        """The session once a conversation at `now_ms` has been recorded."""
        return replace(
            session,
            last_activity_ms=now_ms,
            conversation_count=conversation_count,
            inactive_at_ms=self.inactive_at(now_ms, session.expires_at_ms),
        )

    @classmethod
    def from_settings(cls, settings: SessionSettings) -> SessionLimits:
        return cls(
            duration_ms=settings.session_duration * 1000,
            inactivity_ms=settings.inactivity_timeout * 1000,
            max_conversations=settings.max_conversations_per_session,
        )


@dataclass(frozen=True)
class Session:
    """An active session as the index knows it."""

    session_id: str
    user_id: str
    start_ms: int
    last_activity_ms: int
    conversation_count: int
    expires_at_ms: int
    inactive_at_ms: int
    backend: Backend

    @property
    def next_deadline_ms(self) -> int:
        return first_deadline(self.expires_at_ms, self.inactive_at_ms)[0]

    @property
    def ends_by(self) -> EndReason:
        """The time limit that will end the session first if nothing else does."""
        return first_deadline(self.expires_at_ms, self.inactive_at_ms)[1]

    def expired_reason(self, now_ms: int) -> EndReason | None:
        """Which time limit ended the session by `now_ms`, if one did."""
        return expired_reason(self.expires_at_ms, self.inactive_at_ms, now_ms)

    def to_api(self, now_ms: int) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "startTime": iso(self.start_ms),
            "lastActivity": iso(self.last_activity_ms),
            "conversationCount": self.conversation_count,
            "duration": round((now_ms - self.start_ms) / 1000, 3),
            "status": "active",
            "expiresAt": iso(self.next_deadline_ms),
            "endsBy": self.ends_by,
            "storage": self.backend,
        }


@dataclass(frozen=True)
class EndedSession:
    """The short record kept after a session ends (its data is gone)."""

    sessionId: str
    userId: str
    startTime: int
    endTime: int
    conversationCount: int
    endReason: EndReason

    @property
    def duration(self) -> float:
        return round((self.endTime - self.startTime) / 1000, 3)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> EndedSession:
        return cls(**json.loads(raw))

    def to_api(self) -> dict[str, Any]:
        return {
            "sessionId": self.sessionId,
            "userId": self.userId,
            "startTime": iso(self.startTime),
            "endTime": iso(self.endTime),
            "duration": self.duration,
            "conversationCount": self.conversationCount,
            "endReason": self.endReason,
            "status": "ended",
        }
