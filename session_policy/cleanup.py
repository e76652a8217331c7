"""The cleanup loop: ends expired sessions every CLEANUP_INTERVAL.

One loop per process (`start()` twice does not start a second timer). Each run asks every
available backend to sweep: on Redis a Lua script walks the deadline index, so several
processes sweeping the same Redis end each session exactly once. A session whose user has
a turn running (the user's turn lock is held) is left to the first sweep after that turn:
ending it mid-turn would drop a turn the user is being answered (its writes refused, its
count missing from the ended record).

Redis is swept whenever it answers, also while it refuses new sessions' writes: ending
sessions frees memory, which is what a full Redis needs (a read-only replica refuses the
sweep; the primary's cleanup ends those sessions). A run that fails is logged and counted
(`failedRuns`, `lastError` in `/system/status`); the next run tries again, and the loop
itself never stops on an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from session_policy.events import LogEvents, SessionEvents
from session_policy.models import Backend, EndedSession, now_ms
from session_policy.redis_errors import classify
from session_policy.storage import Storage

log = logging.getLogger(__name__)


class Cleanup:
    """Periodic sweep of expired sessions over the storage backends."""

    def __init__(
        self,
        storage: Storage,
        interval_s: float,
        *,
        clock_ms: Callable[[], int] = now_ms,
        events: SessionEvents | None = None,
    ) -> None:
        self.storage = storage
        self.events = events or LogEvents()
        self.interval_s = interval_s
        self.clock_ms = clock_ms
        self._task: asyncio.Task[None] | None = None
        self.failed_runs = 0  # this process's sweeps that failed (Redis refused or was down)
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return  # one timer per process, however often start() is called
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="session-cleanup")
        log.info("session cleanup every %.1f s", self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception as error:  # keep the timer alive whatever one run hits
                log.exception("session cleanup run failed")
                self._failed("redis" if self.storage.redis else "memory", error)

    def _failed(self, storage: Backend, error: Exception) -> None:
        self.failed_runs += 1
        problem = classify(error)
        self.last_error = (
            f"{problem.reason} ({problem.detail})"
            if problem
            else f"{type(error).__name__}: {error}"
        )
        self.events.cleanup_failed(storage, self.last_error)

    async def run_once(self) -> list[EndedSession]:
        """One sweep of every backend in use; returns the sessions it ended."""
        ended: list[EndedSession] = []
        for backing in self.storage.readable():
            started = time.perf_counter()
            now = self.clock_ms()
            try:
                swept = await backing.sessions.sweep(now)
                duration_ms = (time.perf_counter() - started) * 1000
                await backing.sessions.note_cleanup(now, duration_ms, len(swept))
            except Exception as error:
                if not self.storage.unavailable(error):
                    raise
                self._failed(backing.name, error)
                continue
            ended += swept
            self.events.cleanup_run(backing.name, duration_ms / 1000, len(swept))
            for record in swept:
                self.events.session_ended(record, backing.name)
        return ended
