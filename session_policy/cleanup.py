"""The cleanup loop: ends expired sessions every CLEANUP_INTERVAL.

One loop per process (`start()` twice does not start a second timer). Each run asks every
available backend to sweep: on Redis a Lua script walks the deadline index, so several
processes sweeping the same Redis end each session exactly once. A session whose user has
a turn running (the user's turn lock is held) is left to the first sweep after that turn:
ending it mid-turn would drop a turn the user is being answered (its writes refused, its
count missing from the ended record).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from session_policy.events import LogEvents, SessionEvents
from session_policy.models import EndedSession, now_ms
from session_policy.storage import REDIS_DOWN, Storage

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
            except Exception:  # keep the timer alive whatever one run hits
                log.exception("session cleanup run failed")

    async def run_once(self) -> list[EndedSession]:
        """One sweep of every backend in use; returns the sessions it ended."""
        ended: list[EndedSession] = []
        backings = [self.storage.memory]
        if self.storage.redis is not None and self.storage.mode == "redis":
            backings.append(self.storage.redis)
        for backing in backings:
            started = time.perf_counter()
            now = self.clock_ms()
            try:
                swept = await backing.sessions.sweep(now)
                duration_ms = (time.perf_counter() - started) * 1000
                await backing.sessions.note_cleanup(now, duration_ms, len(swept))
            except REDIS_DOWN as error:
                self.storage.mark_down(error)
                continue
            ended += swept
            self.events.cleanup_run(backing.name, duration_ms / 1000, len(swept))
            for record in swept:
                self.events.session_ended(record, backing.name)
        return ended
