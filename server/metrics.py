"""Prometheus metrics (`GET /metrics`), in a registry of the app's own.

Counters and histograms count what this process did (sum them across replicas). Gauges
read at scrape time describe the shared state: sessions active in Redis, Redis memory.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from session_policy.events import TurnEvent
from session_policy.models import Backend, EndedSession
from session_policy.redis_client import node_infos, primaries_total
from session_policy.redis_errors import REFUSALS
from session_policy.storage import Storage

DEGRADED_KINDS = (*REFUSALS, "timeout", "unreachable", "probe", "unconfigured")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The metrics, fed by the session layer's events (see `session_policy.events`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.turns = Counter(
            "weather_agent_turns", "Conversations answered.", ["storage"], registry=r
        )
        self.turn_latency = Histogram(
            "weather_agent_turn_latency_seconds",
            "Time to answer one message, session handling included.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ended = Counter(
            "weather_agent_sessions_ended", "Sessions ended by this process.", ["reason"],
            registry=r,
        )  # fmt: skip
        self.cleanup_runs = Counter(
            "weather_agent_cleanup_runs", "Cleanup sweeps.", ["storage"], registry=r
        )
        self.cleanup_failures = Counter(
            "weather_agent_cleanup_failures",
            "Cleanup sweeps that failed (Redis refused or was down); retried next run.",
            ["storage"],
            registry=r,
        )
        self.cleanup_duration = Histogram(
            "weather_agent_cleanup_duration_seconds",
            "Time of one cleanup sweep.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5),
            registry=r,
        )
        self.active = Gauge(
            "weather_agent_active_sessions", "Active sessions by storage.", ["storage"],
            registry=r,
        )  # fmt: skip
        self.redis_memory = Gauge(
            "weather_agent_redis_used_memory_bytes",
            "Redis used_memory (on a cluster: summed over the primaries).",
            registry=r,
        )
        self.storage_mode = Gauge(
            "weather_agent_storage_mode", "1 for the storage new sessions go to.", ["mode"],
            registry=r,
        )  # fmt: skip

        self.degraded = Gauge(
            "weather_agent_storage_degraded",
            "1 while new sessions are kept in memory, labelled with why (OOM, READONLY, "
            "timeout, unreachable...; `unconfigured` without REDIS_URL).",
            ["kind"],
            registry=r,
        )

    # SessionEvents
    def turn(self, event: TurnEvent) -> None:
        self.turns.labels(event.storage).inc()
        self.turn_latency.observe(event.latency_s)

    def session_ended(self, record: EndedSession, storage: Backend) -> None:
        self.ended.labels(record.endReason).inc()

    def cleanup_run(self, storage: Backend, duration_s: float, ended: int) -> None:
        self.cleanup_runs.labels(storage).inc()
        self.cleanup_duration.observe(duration_s)

    def cleanup_failed(self, storage: Backend, error: str) -> None:
        self.cleanup_failures.labels(storage).inc()

    async def refresh(self, storage: Storage) -> None:
        """Read the gauges (called on every scrape); a failed read of Redis leaves them as
        they were and does not fail the scrape."""
        for mode in ("redis", "memory"):
            self.storage_mode.labels(mode).set(1 if storage.mode == mode else 0)
        kind = storage.problem_kind
        for seen in {*DEGRADED_KINDS, kind}:
            if seen is not None:
                self.degraded.labels(seen).set(1 if seen == kind else 0)
        memory_stats = await storage.memory.sessions.stats()
        self.active.labels("memory").set(memory_stats["activeSessions"])
        if storage.redis is None or storage.client is None or not storage.reads_redis:
            return
        try:
            redis_stats = await storage.redis.sessions.stats()
            nodes = await node_infos(storage.client, "memory", replicas=False)
        except Exception as error:
            if not storage.unavailable(error):
                raise
            return
        self.active.labels("redis").set(redis_stats["activeSessions"])
        self.redis_memory.set(primaries_total(nodes, "used_memory"))
