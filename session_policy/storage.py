"""Where sessions live: Redis while it answers, process memory while it does not.

Each backend bundles the session index, the checkpointer holding thread state and the
store holding user facts. New sessions go to Redis whenever it is up. When Redis fails
(at start-up or later) the service keeps answering from memory, reports `degraded`, and
a single background task reconnects with exponential backoff.

Sessions that live through a switch stay where they started: a memory session created
during an outage continues in memory until it ends (it is not copied to Redis); Redis
sessions that were active when Redis went away are left there, and their users get a new
memory session meanwhile. Once Redis is back, the old Redis sessions are ended by cleanup
(or their keys' own TTLs), and each user's next session starts in Redis again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import redis
import redis.asyncio as aioredis
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from session_policy.checkpointer import RedisSessionSaver
from session_policy.config import SessionSettings
from session_policy.memory_store import MemorySessionStore
from session_policy.models import Backend, SessionLimits
from session_policy.redis_store import RedisSessionStore
from session_policy.store import SessionStore
from session_policy.user_memory import RedisUserStore

log = logging.getLogger(__name__)

# What counts as "Redis is unreachable" (as opposed to a bug in a command).
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)


@dataclass
class Backing:
    """One storage backend: session index, thread checkpointer and user-facts store."""

    name: Backend
    sessions: SessionStore
    checkpointer: BaseCheckpointSaver[Any]
    facts: BaseStore


class Storage:
    """Owns the Redis connection, the memory fallback and the switch between them."""

    def __init__(
        self,
        settings: SessionSettings,
        redis_url: str | None,
        *,
        max_backoff: float = 10.0,
        socket_timeout: float = 2.0,
    ) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.limits = SessionLimits.from_settings(settings)
        self.max_backoff = max_backoff
        retention_ms = settings.session_history_retention * 1000
        memory_saver = InMemorySaver()
        self.memory = Backing(
            "memory",
            MemorySessionStore(memory_saver, self.limits, retention_ms=retention_ms),
            memory_saver,
            InMemoryStore(),
        )
        self.redis: Backing | None = None
        self.client: aioredis.Redis | None = None
        if redis_url:
            # A blocking pool queues for a free connection under bursts instead of
            # failing with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=64,
                timeout=socket_timeout,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                # After a Redis restart, pooled connections are stale: one immediate retry
                # on a fresh connection tells "restarted" apart from "down".
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
            self.client = aioredis.Redis(connection_pool=pool)
            grace_ms = max(2 * settings.cleanup_interval, 60_000)
            self.redis = Backing(
                "redis",
                RedisSessionStore(
                    self.client, self.limits, retention_ms=retention_ms, grace_ms=grace_ms
                ),
                RedisSessionSaver(self.client),
                RedisUserStore(self.client, default_ttl_minutes=settings.user_memory_ttl / 60),
            )
        self.mode: Backend = "memory"
        self.last_error: str | None = None
        self.ping_ms: float | None = None
        self._reconnect: asyncio.Task[None] | None = None

    @property
    def status(self) -> Literal["ok", "degraded"]:
        """`ok` on Redis; `degraded` on the memory fallback (or memory by configuration)."""
        return "ok" if self.mode == "redis" else "degraded"

    def backing(self, name: Backend) -> Backing:
        if name == "redis" and self.redis is not None:
            return self.redis
        return self.memory

    @property
    def current(self) -> Backing:
        """Where new sessions go now."""
        return self.backing(self.mode)

    async def start(self) -> None:
        if self.redis is None:
            log.warning("no REDIS_URL: sessions are kept in process memory only")
            return
        if not await self.ping():
            self.mark_down(self.last_error or "unreachable")

    async def ping(self) -> bool:
        if self.client is None:
            return False
        started = time.perf_counter()
        try:
            await self.client.ping()
        except REDIS_DOWN as error:
            self.last_error = f"{type(error).__name__}: {error}"
            return False
        self.ping_ms = round((time.perf_counter() - started) * 1000, 3)
        if self.mode != "redis":
            log.info("Redis is up at %s: new sessions are stored in Redis", _safe(self.redis_url))
        self.mode = "redis"
        self.last_error = None
        return True

    def mark_down(self, error: BaseException | str) -> None:
        """Switch new sessions to memory and start reconnecting (once)."""
        self.last_error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if self.mode == "redis" or self._reconnect is None:
            log.warning(
                "Redis unavailable (%s): answering from in-memory storage (degraded)",
                self.last_error,
            )
        self.mode = "memory"
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.25
        while not await self.ping():
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self.client is not None:
            await self.client.aclose()


def _safe(url: str | None) -> str:
    """The URL without its password, for logs."""
    if not url or "@" not in url:
        return url or ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
