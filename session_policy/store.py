"""The session index interface, implemented on Redis (`redis_store`) and in memory (`memory_store`).

The index knows which session is active for each user, when each one next expires, and
the records of ended sessions. Ending a session also deletes its thread data, so the
index is where "a session's data leaves storage at once" is enforced.
"""

from __future__ import annotations

from typing import Any, Protocol

from session_policy.models import Backend, EndedSession, EndReason, Session


class SessionStore(Protocol):
    backend: Backend

    async def get_or_start(self, user_id: str, now_ms: int) -> Session:
        """The user's active session, or a new one; atomic (one session per user)."""
        ...

    async def get(self, session_id: str) -> Session | None: ...

    async def active(self, user_id: str) -> Session | None: ...

    async def begin_turn(
        self, user_id: str, token: str, lock_ms: int, now_ms: int, *, queue_ms: int = 0
    ) -> Session | None:
        """`try_lock` then `get_or_start` in one step (one round trip); None if locked."""
        ...

    async def record_turn(
        self,
        session: Session,
        now_ms: int,
        conversation_count: int,
        *,
        unlock: tuple[str, str] | None = None,
    ) -> Session | None:
        """Note a finished conversation; None if the session ended meanwhile. With
        `unlock` (user id, token), also release that turn lock, in the same step."""
        ...

    async def end(self, session_id: str, reason: EndReason, now_ms: int) -> EndedSession | None:
        """End the session once: delete its data, keep its record. None if already ended."""
        ...

    async def sweep(self, now_ms: int) -> list[EndedSession]:
        """End every session whose duration or inactivity deadline has passed."""
        ...

    async def ended(self, user_id: str, limit: int) -> list[EndedSession]:
        """The user's ended-session records, newest first."""
        ...

    async def ended_record(self, session_id: str) -> EndedSession | None: ...

    async def note_cleanup(self, now_ms: int, duration_ms: float, ended: int) -> None: ...

    async def try_lock(self, user_id: str, token: str, ttl_ms: int, *, queue_ms: int = 0) -> bool:
        """Take the user's turn lock (one turn at a time per user); False if taken. True
        if `token` holds it already.

        With `queue_ms` > 0 the user's turns queue for it, first come first served: the
        lock goes to the waiting token with the lowest ticket; a token refused now keeps its
        place (a new one gets the next ticket) while it asks again within `queue_ms`, and
        drops out when it stops asking (its process died)."""
        ...

    async def leave_queue(self, user_id: str, token: str) -> None:
        """Give up the token's place in the user's queue (it stopped waiting)."""
        ...

    async def unlock(self, user_id: str, token: str) -> None:
        """Release the lock if `token` still holds it."""
        ...

    async def stats(self) -> dict[str, Any]:
        """activeSessions, endedByReason, cleanup {runs, lastRun, lastDurationMs, lastEnded}."""
        ...
