"""Session records and the limits that end them (pure data and arithmetic, no I/O)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class SessionLimits:
    """The three limits, in milliseconds and conversations."""

    duration_ms: int
    inactivity_ms: int
    max_conversations: int

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
        return min(self.expires_at_ms, self.inactive_at_ms)

    @property
    def ends_by(self) -> EndReason:
        """The time limit that will end the session first if nothing else does."""
        return "duration" if self.expires_at_ms <= self.inactive_at_ms else "inactivity"

    def expired_reason(self, now_ms: int) -> EndReason | None:
        """Which limit ended the session by `now_ms`: the one whose deadline came first."""
        if now_ms < self.next_deadline_ms:
            return None
        return "inactivity" if self.inactive_at_ms < self.expires_at_ms else "duration"

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
