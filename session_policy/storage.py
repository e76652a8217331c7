"""Where sessions live: Redis while it answers, process memory while it does not.

Each backend bundles the session index, the checkpointer holding thread state and the
store holding user facts. New sessions go to Redis whenever it is up. When Redis fails
(at start-up or later) the service keeps answering from memory, reports `degraded`, and
a single background task reconnects with exponential backoff.

Redis that answers but refuses (maxmemory reached, a read-only replica, loading...) counts as
down for new sessions, like an unreachable one (`redis_errors` tells these failures apart
from our own bugs). Health is probed with what fails: a PING and a small expiring write, so
a Redis that answers PING but refuses writes is not taken back until it takes writes. While
it still answers reads, the session routes keep reading the sessions it holds.

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

import redis.asyncio as aioredis
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from session_policy import keys
from session_policy.checkpointer import RedisSessionSaver
from session_policy.config import SessionSettings
from session_policy.memory_store import MemorySessionStore
from session_policy.models import Backend, SessionLimits
from session_policy.redis_client import RedisClient, make_client, node_infos
from session_policy.redis_errors import Unavailable, classify
from session_policy.redis_store import RedisSessionStore
from session_policy.store import SessionStore
from session_policy.user_memory import RedisUserStore

log = logging.getLogger(__name__)

PROBE_TTL_MS = 10_000
# After an OOM, Redis takes new sessions again only below this share of its maxmemory: at
# the edge a small probe write fits while the next turn's checkpoint does not, and the
# service would flap between Redis and memory.
OOM_RECOVERY_FILL = 0.95


class StorageUnavailableError(RuntimeError):
    """Redis can't do what was asked now (the API answers 503); the message says why."""


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
        self.redis_store: RedisSessionStore | None = None  # the Redis backing's index
        self.client: RedisClient | None = None
        if redis_url:
            self.client = make_client(redis_url, settings.redis_timeout)
            grace_ms = max(2 * settings.cleanup_interval, 60_000)
            self.redis_store = RedisSessionStore(
                self.client, self.limits, retention_ms=retention_ms, grace_ms=grace_ms
            )
            self.redis = Backing(
                "redis",
                self.redis_store,
                RedisSessionSaver(self.client),
                RedisUserStore(self.client, default_ttl_minutes=settings.user_memory_ttl / 60),
            )
        self.mode: Backend = "memory"
        self.problem: Unavailable | None = None  # why new sessions are not on Redis
        self.ping_ms: float | None = None
        self._reconnect: asyncio.Task[None] | None = None

    @property
    def writable(self) -> bool:
        """New sessions go to Redis: it takes writes."""
        return self.mode == "redis"

    @property
    def status(self) -> Literal["ok", "degraded"]:
        """`ok` on Redis; `degraded` on the memory fallback (or memory by configuration)."""
        return "ok" if self.writable else "degraded"

    @property
    def reason(self) -> str | None:
        """Why the service is degraded, for people (None when it is not)."""
        if self.writable:
            return None
        if self.redis is None:
            return "no REDIS_URL: sessions are kept in process memory only"
        return self.problem.reason if self.problem else "Redis not probed yet"

    @property
    def problem_kind(self) -> str | None:
        """`reason` in a word: an error code (OOM, READONLY...), `timeout`, `unreachable`,
        `probe`, or `unconfigured` (no REDIS_URL); None when not degraded."""
        if self.writable:
            return None
        if self.redis is None:
            return "unconfigured"
        return self.problem.kind if self.problem else "probe"

    @property
    def last_error(self) -> str | None:
        """The error behind `reason`, as raised."""
        return self.problem.detail if self.problem and not self.writable else None

    def backing(self, name: Backend) -> Backing:
        if name == "redis" and self.redis is not None:
            return self.redis
        return self.memory

    @property
    def current(self) -> Backing:
        """Where new sessions go now."""
        return self.backing(self.mode)

    def readable(self) -> list[Backing]:
        """The backends sessions can be read from now: memory (sessions started during an
        outage come first, as they are the ones their users continue), then Redis while it
        answers reads, even if it refuses writes."""
        return [self.memory, self.redis] if self.redis and self.reads_redis else [self.memory]

    @property
    def reads_redis(self) -> bool:
        """Redis answers reads now (it takes writes, or refuses only writes)."""
        if self.redis is None:
            return False
        return self.writable or (self.problem is not None and self.problem.reads)

    async def start(self) -> None:
        if self.redis is None:
            log.warning("no REDIS_URL: sessions are kept in process memory only")
            return
        if not await self.probe():
            self._start_reconnecting()

    async def probe(self) -> bool:
        """Whether Redis takes writes now: a PING, then a small expiring write under the
        service's prefix. Switches new sessions to Redis, or to memory, accordingly."""
        if self.client is None:
            return False
        started = time.perf_counter()
        try:
            await self.client.ping()
            self.ping_ms = round((time.perf_counter() - started) * 1000, 3)
            await self._probe_write(self.client)
            if self.problem is not None and self.problem.kind == "OOM":
                for node in await node_infos(self.client, "memory", replicas=False):
                    limit = int(node.info["maxmemory"])
                    if limit and int(node.info["used_memory"]) > OOM_RECOVERY_FILL * limit:
                        return False  # still nearly full: stay on memory, same problem
        except Exception as error:
            self._down(classify(error) or _probe_failed(error))
            return False
        if not self.writable:
            url = _safe(self.redis_url)
            log.info("Redis takes writes at %s: new sessions are stored in Redis", url)
        self.mode = "redis"
        self.problem = None
        return True

    @staticmethod
    async def _probe_write(client: RedisClient) -> None:
        """The small expiring write: on a cluster one per shard, so every primary holding
        sessions is checked (a failed-over or migrating part refuses)."""
        if not isinstance(client, aioredis.RedisCluster):
            await client.set(keys.PROBE, "1", px=PROBE_TTL_MS)
            return
        async with client.pipeline(transaction=False) as pipe:
            for shard in range(keys.SHARDS):
                pipe.set(keys.shard_probe(shard), "1", px=PROBE_TTL_MS)
            await pipe.execute()

    def unavailable(self, error: BaseException) -> bool:
        """If `error` means Redis can't serve now, switch new sessions to memory, start
        probing for its return, and answer True; False for any other error (a bug: the
        caller re-raises it)."""
        problem = classify(error)
        if problem is None:
            return False
        self._down(problem)
        self._start_reconnecting()
        return True

    def _down(self, problem: Unavailable) -> None:
        # One warning per change of state (not per failed request or probe).
        changed = self.writable or self.problem is None or self.problem.kind != problem.kind
        if changed:
            log.warning(
                "%s (%s): answering from in-memory storage (degraded)",
                problem.reason,
                problem.detail,
            )
        self.mode = "memory"
        self.problem = problem

    def _start_reconnecting(self) -> None:
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.25
        while not await self.probe():
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self.client is not None:
            await self.client.aclose()


def _probe_failed(error: BaseException) -> Unavailable:
    """A probe that failed for another reason (an ACL forbidding the write...): not healthy."""
    return Unavailable(
        "probe", "the Redis health probe failed", False, f"{type(error).__name__}: {error}"
    )


def _safe(url: str | None) -> str:
    """The URL without its password, for logs."""
    if not url or "@" not in url:
        return url or ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
