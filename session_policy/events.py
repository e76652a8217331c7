"""What the session layer reports as it works: turns, session ends, cleanup runs.

The manager and the cleanup loop call these hooks. By default they are logged as structured
records (the fields travel in `extra`, see `server/logs.py` for the formatters); the server
adds Prometheus metrics with `AllEvents`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from session_policy.models import Backend, EndedSession


@dataclass(frozen=True)
class TurnEvent:
    user_id: str
    session_id: str
    conversation_count: int
    session_status: str
    storage: Backend
    latency_s: float


class SessionEvents(Protocol):
    def turn(self, event: TurnEvent) -> None: ...

    def session_ended(self, record: EndedSession, storage: Backend) -> None: ...

    def cleanup_run(self, storage: Backend, duration_s: float, ended: int) -> None: ...

    def cleanup_failed(self, storage: Backend, error: str) -> None: ...


log = logging.getLogger("weather_agent.sessions")


class LogEvents:
    """One log record per turn, per ended session, per cleanup run that ended any, and per
    cleanup run that failed."""

    def turn(self, event: TurnEvent) -> None:
        fields = {**asdict(event), "latency_ms": round(event.latency_s * 1000, 2)}
        del fields["latency_s"]
        log.info("turn", extra=fields)

    def session_ended(self, record: EndedSession, storage: Backend) -> None:
        log.info(
            "session ended",
            extra={
                "session_id": record.sessionId,
                "user_id": record.userId,
                "reason": record.endReason,
                "conversation_count": record.conversationCount,
                "duration_s": record.duration,
                "storage": storage,
            },
        )

    def cleanup_run(self, storage: Backend, duration_s: float, ended: int) -> None:
        level = logging.INFO if ended else logging.DEBUG
        fields = {"storage": storage, "ended": ended, "duration_ms": round(duration_s * 1000, 2)}
        log.log(level, "cleanup run", extra=fields)

    def cleanup_failed(self, storage: Backend, error: str) -> None:
        log.warning(
            "cleanup run failed; the next run tries again",
            extra={"storage": storage, "error": error},
        )


class AllEvents:
    """Passes every event on to each of `listeners`."""

    def __init__(self, listeners: Sequence[SessionEvents]) -> None:
        self.listeners = list(listeners)

    def turn(self, event: TurnEvent) -> None:
        for listener in self.listeners:
            listener.turn(event)

    def session_ended(self, record: EndedSession, storage: Backend) -> None:
        for listener in self.listeners:
            listener.session_ended(record, storage)

    def cleanup_run(self, storage: Backend, duration_s: float, ended: int) -> None:
        for listener in self.listeners:
            listener.cleanup_run(storage, duration_s, ended)

    def cleanup_failed(self, storage: Backend, error: str) -> None:
        for listener in self.listeners:
            listener.cleanup_failed(storage, error)
