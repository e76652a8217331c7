"""The session index in process memory: the fallback while Redis is unreachable.

Same behaviour as the Redis store for one process; its sessions die with the process
(which ends them with reason `shutdown` when it stops cleanly).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from session_policy.ids import new_session_id
from session_policy.models import Backend, EndedSession, EndReason, Session, SessionLimits
from session_policy.redis_store import _stats


class MemorySessionStore:
    """Sessions in a dict; ending one deletes its thread from `saver` (an in-memory saver)."""

    backend: Backend = "memory"

    def __init__(
        self, saver: BaseCheckpointSaver[Any], limits: SessionLimits, *, retention_ms: int
    ) -> None:
        self.saver = saver
        self.limits = limits
        self.retention_ms = retention_ms
        self._sessions: dict[str, Session] = {}
        self._active: dict[str, str] = {}  # user id -> session id
        self._ended: dict[str, EndedSession] = {}
        self._counters: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._turn_locks: dict[str, tuple[str, float]] = {}  # user -> (token, expires at)
        # user -> waiting turn's token -> (ticket, waiter alive until); user -> last ticket
        self._queues: dict[str, dict[str, tuple[int, float]]] = {}
        self._tickets: dict[str, int] = {}

    @property
    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    async def get_or_start(self, user_id: str, now_ms: int) -> Session:
        async with self._lock:
            current = self._active.get(user_id)
            if current in self._sessions:
                return self._sessions[current]
            start = now_ms
            while new_session_id(user_id, start) in self._ended:
                start += 1
            session = self.limits.new_session(
                new_session_id(user_id, start), user_id, start, "memory"
            )
            self._sessions[session.session_id] = session
            self._active[user_id] = session.session_id
            return session

    async def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    async def active(self, user_id: str) -> Session | None:
        return self._sessions.get(self._active.get(user_id, ""))

    async def begin_turn(
        self, user_id: str, token: str, lock_ms: int, now_ms: int, *, queue_ms: int = 0
    ) -> Session | None:
        if not await self.try_lock(user_id, token, lock_ms, queue_ms=queue_ms):
            return None
        return await self.get_or_start(user_id, now_ms)

    async def record_turn(
        self,
        session: Session,
        now_ms: int,
        conversation_count: int,
        *,
        unlock: tuple[str, str] | None = None,
    ) -> Session | None:
        if unlock is not None:
            await self.unlock(*unlock)
        current = self._sessions.get(session.session_id)
        if current is None:
            return None
        updated = self.limits.after_turn(current, now_ms, conversation_count)
        self._sessions[session.session_id] = updated
        return updated

    async def end(self, session_id: str, reason: EndReason, now_ms: int) -> EndedSession | None:
        async with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is None:
                return None
            if self._active.get(session.user_id) == session_id:
                del self._active[session.user_id]
            await self.saver.adelete_thread(session_id)
            record = EndedSession(
                sessionId=session_id,
                userId=session.user_id,
                startTime=session.start_ms,
                endTime=now_ms,
                conversationCount=session.conversation_count,
                endReason=reason,
            )
            self._ended[session_id] = record
            self._prune(now_ms)
            key = f"ended:{reason}"
            self._counters[key] = str(int(self._counters.get(key, 0)) + 1)
            return record

    def _prune(self, now_ms: int) -> None:
        cutoff = now_ms - self.retention_ms
        for session_id in [s for s, r in self._ended.items() if r.endTime <= cutoff]:
            del self._ended[session_id]

    async def sweep(self, now_ms: int) -> list[EndedSession]:
        ended = []
        for session in list(self._sessions.values()):
            reason = session.expired_reason(now_ms)
            if reason and not self._turn_running(session.user_id):
                record = await self.end(session.session_id, reason, now_ms)
                if record:
                    ended.append(record)
        self._prune(now_ms)
        return ended

    async def ended(self, user_id: str, limit: int) -> list[EndedSession]:
        records = [r for r in self._ended.values() if r.userId == user_id]
        return sorted(records, key=lambda r: r.endTime, reverse=True)[: max(limit, 1)]

    async def ended_record(self, session_id: str) -> EndedSession | None:
        return self._ended.get(session_id)

    def _turn_running(self, user_id: str) -> bool:
        """A turn of the user holds the lock: sweeping its session now would drop that turn."""
        held = self._turn_locks.get(user_id)
        return held is not None and held[1] > time.monotonic()

    async def try_lock(self, user_id: str, token: str, ttl_ms: int, *, queue_ms: int = 0) -> bool:
        # The rules of the Redis store's `take_lock` script.
        now = time.monotonic()
        held = self._turn_locks.get(user_id)
        if held is not None and held[1] > now:
            if held[0] == token:
                return True
            if not queue_ms:
                return False
        elif not queue_ms:
            self._turn_locks[user_id] = (token, now + ttl_ms / 1000)
            return True
        queue = {t: e for t, e in self._queues.get(user_id, {}).items() if e[1] > now}
        mine = queue.get(token)
        free = held is None or held[1] <= now
        if free and not any(
            other != token and (mine is None or entry[0] < mine[0])
            for other, entry in queue.items()
        ):
            queue.pop(token, None)
            self._set_queue(user_id, queue)
            self._turn_locks[user_id] = (token, now + ttl_ms / 1000)
            return True
        if mine is None:
            self._tickets[user_id] = self._tickets.get(user_id, 0) + 1
        ticket = mine[0] if mine else self._tickets[user_id]
        queue[token] = (ticket, now + queue_ms / 1000)
        self._set_queue(user_id, queue)
        return False

    def _set_queue(self, user_id: str, queue: dict[str, tuple[int, float]]) -> None:
        if queue:
            self._queues[user_id] = queue
        else:  # its ticket counter goes with its last waiter, as in Redis
            self._queues.pop(user_id, None)
            self._tickets.pop(user_id, None)

    async def leave_queue(self, user_id: str, token: str) -> None:
        queue = self._queues.get(user_id, {})
        queue.pop(token, None)
        self._set_queue(user_id, queue)

    async def unlock(self, user_id: str, token: str) -> None:
        held = self._turn_locks.get(user_id)
        if held is not None and held[0] == token:
            del self._turn_locks[user_id]

    async def note_cleanup(self, now_ms: int, duration_ms: float, ended: int) -> None:
        self._counters["cleanup:runs"] = str(int(self._counters.get("cleanup:runs", 0)) + 1)
        self._counters["cleanup:lastRun"] = str(now_ms)
        self._counters["cleanup:lastDurationMs"] = str(round(duration_ms, 3))
        self._counters["cleanup:lastEnded"] = str(ended)

    async def stats(self) -> dict[str, Any]:
        return _stats(self._counters, len(self._sessions))
