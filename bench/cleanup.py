"""Target 3, cleanup: ending N expired sessions, and Redis memory coming back.

How the sessions are made (10,000 full agent conversations would take minutes):

* one real session first: the scripted conversation (5 conversations, tool calls
  included) through the `SessionManager` on Redis, so its thread hash is exactly what
  `RedisSessionSaver` writes (its latest checkpoint); its hash is `DUMP`ed, then the
  session is ended;
* each of the N sessions is started by `RedisSessionStore.get_or_start` and given its 5
  conversations by `record_turn` (the service's own Lua scripts: meta hash, user pointer,
  deadline index), and gets that thread hash under its own thread key by `RESTORE`, with the
  session's hard deadline as absolute TTL, which is what the saver's guarded writes set.
  User facts are not created: they belong to the user, not the session, and expire on
  their own (USER_MEMORY_TTL).

Then one cleanup run (`Cleanup.run_once`, the loop's body, as the server runs it) with its
clock past every deadline ends them all, timed. `used_memory` is read before the sessions
exist (after a warm-up that created and swept one sweep batch of sessions, so the scripts
are loaded and Redis' Lua VM has its working size), at the peak, right after the sweep
(the ended-session records are still held) and once the records' retention has passed
(the bench sets SESSION_HISTORY_RETENTION to a few seconds for that; the server's default
keeps them 24 h) and the cleanup timer ran a few more times (Redis collects the Lua
garbage of the big sweep over the next script calls).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bench.common import (
    Section,
    Target,
    bench_settings,
    fmt,
    fmt_bytes,
    message,
    offline_parts,
    settled_used_memory,
)
from server.service import make_manager
from session_policy import keys
from session_policy.cleanup import Cleanup
from session_policy.events import LogEvents
from session_policy.models import Session
from session_policy.policy import FACTS_KEY, FACTS_NAMESPACE
from session_policy.redis_client import RedisClient, node_infos
from session_policy.redis_store import SWEEP_BATCH, RedisSessionStore
from session_policy.storage import Storage
from session_policy.user_memory import item_key

MAX_SWEEP_S = 2.0
MAX_MEMORY_DRIFT = 0.05
TEMPLATE_TURNS = 5
CREATE_CONCURRENCY = 64  # the service's pool size: the same connections before and after
RESTORE_BATCH = 500
IDLE_RUNS = 200  # at most: cleanup runs (empty sweeps) until the Lua VM has shrunk


@dataclass(frozen=True)
class CleanupSizes:
    sessions: int = 10_000
    retention_s: int = 5
    expiry_wait_s: float = 60.0
    settle_s: float = 3.0  # at most, waiting for used_memory to stop moving


class QuietEvents(LogEvents):
    """No log record per ended session (10,000 lines would time the logging)."""

    def session_ended(self, record: Any, storage: Any) -> None:
        return None


async def _template_thread(storage: Storage, settings: Any) -> tuple[bytes, int]:
    """DUMP of a real thread after TEMPLATE_TURNS conversations, and its MEMORY USAGE."""
    model, weather = offline_parts()
    manager = make_manager(settings, storage, model=model, weather=weather)
    user = "bench-cleanup-template"
    session_id = ""
    for turn in range(TEMPLATE_TURNS):
        session_id = (await manager.chat(user, message(turn))).session_id
    assert storage.client is not None
    client = storage.client
    dump = await client.dump(keys.thread(session_id))
    usage = await client.memory_usage(keys.thread(session_id), samples=0)
    await manager.end_user_sessions(user)
    await client.delete(keys.user_ended(user), item_key((FACTS_NAMESPACE, user), FACTS_KEY))
    assert isinstance(dump, bytes)
    return dump, int(usage or 0)


async def _create(
    client: RedisClient, store: RedisSessionStore, dump: bytes, n: int, now: int
) -> list[Session]:
    semaphore = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> Session:
        async with semaphore:
            session = await store.get_or_start(f"bench-clean-{i}", now)
            updated = await store.record_turn(session, now, TEMPLATE_TURNS)
            assert updated is not None
            return updated

    sessions = list(await asyncio.gather(*(one(i) for i in range(n))))
    for start in range(0, n, RESTORE_BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for session in sessions[start : start + RESTORE_BATCH]:
                pipe.restore(
                    keys.thread(session.session_id),
                    session.expires_at_ms,
                    dump,
                    replace=True,
                    absttl=True,
                )
            await pipe.execute()
    return sessions


async def _wait_for_dbsize(client: aioredis.Redis, target: int, limit_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if int(await client.dbsize()) <= target:
            break
        await asyncio.sleep(0.25)
    return time.monotonic() - started


async def _memory_stats(client: aioredis.Redis) -> dict[str, float]:
    """MEMORY STATS, the numeric top-level entries (what used_memory is made of)."""
    stats = await client.memory_stats()
    flat: dict[str, float] = {}
    for key, value in stats.items():
        if isinstance(value, dict):  # db.0: the keyspace's hash tables
            for sub, number in value.items():
                if isinstance(number, int | float):
                    flat[f"{key}.{sub}"] = float(number)
        elif isinstance(value, int | float):
            flat[str(key)] = float(value)
    return {k: v for k, v in flat.items() if "allocator" not in k and "rss" not in k}


async def run(url: str, sizes: CleanupSizes) -> Section:
    started = time.perf_counter()
    section = Section(
        "cleanup",
        f"3. Cleanup of {sizes.sessions:,} expired sessions",
        ["what", "value", "detail"],
    )
    settings = bench_settings(url, session_history_retention=sizes.retention_s)
    probe = aioredis.Redis.from_url(url)
    await probe.flushall()
    storage = Storage(settings, url)
    await storage.start()
    assert storage.redis is not None
    assert isinstance(storage.client, aioredis.Redis)  # the bench runs on one Redis
    client = storage.client
    store = storage.redis.sessions
    assert isinstance(store, RedisSessionStore)
    try:
        dump, thread_bytes = await _template_thread(storage, settings)
        # warm up: scripts loaded, the stats hash exists, the pool holds its connections
        now = int(time.time() * 1000)
        await _create(client, store, dump, min(SWEEP_BATCH, sizes.sessions), now)
        warm = Cleanup(
            storage,
            3600,
            clock_ms=lambda: now + settings.session_duration * 1000 + 1000,
            events=QuietEvents(),
        )
        await warm.run_once()
        await _wait_for_dbsize(client, 1, sizes.retention_s + sizes.expiry_wait_s)
        for _ in range(IDLE_RUNS):  # as at the end: the Lua VM's garbage collected
            await warm.run_once()
        await asyncio.gather(*(client.ping() for _ in range(CREATE_CONCURRENCY)))
        start_mem = await settled_used_memory(client, seconds=sizes.settle_s)
        start_keys = int(await client.dbsize())
        start_stats = await _memory_stats(client)

        now = int(time.time() * 1000)
        create_started = time.perf_counter()
        sessions = await _create(client, store, dump, sizes.sessions, now)
        create_s = time.perf_counter() - create_started
        peak_mem = await settled_used_memory(client, seconds=sizes.settle_s)
        peak_keys = int(await client.dbsize())

        sweep_now = now + settings.session_duration * 1000 + 1000
        cleanup = Cleanup(storage, 3600, clock_ms=lambda: sweep_now, events=QuietEvents())
        sweep_started = time.perf_counter()
        ended = await cleanup.run_once()
        sweep_s = time.perf_counter() - sweep_started
        after_sweep = await settled_used_memory(client, seconds=min(1.0, sizes.settle_s))
        after_sweep_keys = int(await client.dbsize())
        stats = await store.stats()

        waited = await _wait_for_dbsize(client, start_keys, sizes.retention_s + sizes.expiry_wait_s)
        # The sweep's Lua garbage is collected by Redis over the next script calls (a GC
        # step every 50 calls): here the next runs of the cleanup timer, each sweeping the
        # now empty index, until the Lua VM is back to its size at the start.
        idle_runs = 0
        while idle_runs < IDLE_RUNS:
            await cleanup.run_once()
            idle_runs += 1
            if idle_runs % 10 == 0:
                vm = (await _memory_stats(client)).get("script.VMs", 0.0)
                if vm <= start_stats.get("script.VMs", 0.0):
                    break
        end_mem = await settled_used_memory(client, seconds=sizes.settle_s)
        end_keys = int(await client.dbsize())
        end_stats = await _memory_stats(client)
    finally:
        await storage.close()
        await probe.flushall()
        await probe.aclose()

    start_used = start_mem["used_memory"]

    def drift(mem: dict[str, int]) -> float:
        return (mem["used_memory"] - start_used) / start_used

    per_session = (peak_mem["used_memory"] - start_used) / max(len(sessions), 1)
    records = (after_sweep["used_memory"] - start_used) / max(len(ended), 1)
    section.figures = {
        "sessions": len(sessions),
        "ended": len(ended),
        "template_thread_bytes": thread_bytes,
        "create_seconds": create_s,
        "sweep_seconds": sweep_s,
        "sweep_seconds_by_store": stats["cleanup"]["lastDurationMs"] / 1000,
        "used_memory": {
            "start": start_mem,
            "peak": peak_mem,
            "after_sweep": after_sweep,
            "after_retention": end_mem,
        },
        "keys": {
            "start": start_keys,
            "peak": peak_keys,
            "after_sweep": after_sweep_keys,
            "after_retention": end_keys,
        },
        "memory_stats_change": {
            k: end_stats[k] - start_stats.get(k, 0)
            for k in end_stats
            if end_stats[k] != start_stats.get(k, 0)
        },
        "seconds_until_records_expired": waited,
        "idle_cleanup_runs": idle_runs,
        "retention_s": sizes.retention_s,
    }
    section.rows += [
        ["sessions created", f"{len(sessions):,}", f"in {fmt(create_s)} s (not timed)"],
        [
            "thread per session",
            fmt_bytes(thread_bytes),
            f"RESTORE of a real {TEMPLATE_TURNS}-conversation thread",
        ],
        [
            "sessions ended by the sweep",
            f"{len(ended):,}",
            f"keys {peak_keys:,} → {after_sweep_keys:,}",
        ],
        [
            "sweep time",
            f"{fmt(sweep_s, 3)} s",
            "Cleanup.run_once; the store's own timing "
            f"{fmt(stats['cleanup']['lastDurationMs'] / 1000, 3)} s",
        ],
        ["used_memory at start", fmt_bytes(start_used), f"{start_keys} keys"],
        [
            "used_memory at peak",
            fmt_bytes(peak_mem["used_memory"]),
            f"+{fmt_bytes(per_session)} per session",
        ],
        [
            "used_memory right after the sweep",
            fmt_bytes(after_sweep["used_memory"]),
            f"{drift(after_sweep) * 100:+.2f}% (ended records held: {fmt_bytes(records)} each)",
        ],
        [
            "used_memory after the records' retention",
            fmt_bytes(end_mem["used_memory"]),
            f"{drift(end_mem) * 100:+.2f}%, {end_keys} keys, records gone after "
            f"{fmt(waited, 1)} s, then {idle_runs} empty cleanup runs",
        ],
    ]
    section.targets.append(
        Target(
            "cleanup",
            f"sweep of {len(sessions):,} expired sessions (s)",
            sweep_s,
            MAX_SWEEP_S,
            "<",
            "s",
            f"{len(ended):,} ended",
        )
    )
    section.targets.append(
        Target(
            "cleanup",
            "used_memory back to start (drift), records expired",
            drift(end_mem) * 100,
            MAX_MEMORY_DRIFT * 100,
            "<=",
            "%",
            f"{fmt_bytes(start_used)} → {fmt_bytes(peak_mem['used_memory'])} → "
            f"{fmt_bytes(end_mem['used_memory'])}; right after the sweep, with the "
            f"{len(ended):,} ended-session records still held: {drift(after_sweep) * 100:+.1f}%",
        )
    )
    section.notes.append(
        f"SESSION_HISTORY_RETENTION={sizes.retention_s} s here so the records' expiry can be "
        "observed (default 24 h: until then each ended session keeps a ~"
        f"{fmt_bytes(records)} record)"
    )
    section.seconds = time.perf_counter() - started
    return section


async def _keys_per_primary(client: RedisClient) -> list[int]:
    rows = await node_infos(client, "keyspace", replicas=False)
    return [int(row.info.get("db0", {}).get("keys", 0)) for row in rows]


async def run_on_cluster(url: str, sizes: CleanupSizes, section: Section) -> None:
    """The same sweep on a Redis Cluster (`url`: redis+cluster://): its rows and target
    join `section`. Only the sweep is timed; memory is the single-Redis rows' subject."""
    settings = bench_settings(url, session_history_retention=sizes.retention_s)
    storage = Storage(settings, url)
    await storage.start()
    assert storage.redis_store is not None
    assert storage.client is not None
    client, store = storage.client, storage.redis_store
    try:
        dump, _ = await _template_thread(storage, settings)
        now = int(time.time() * 1000)
        await _create(client, store, dump, min(SWEEP_BATCH, sizes.sessions), now)
        warm_now = now + settings.session_duration * 1000 + 1000
        await Cleanup(storage, 3600, clock_ms=lambda: warm_now, events=QuietEvents()).run_once()
        start_keys = sum(await _keys_per_primary(client))

        now = int(time.time() * 1000)
        sessions = await _create(client, store, dump, sizes.sessions, now)
        per_node = await _keys_per_primary(client)
        sweep_now = now + settings.session_duration * 1000 + 1000
        cleanup = Cleanup(storage, 3600, clock_ms=lambda: sweep_now, events=QuietEvents())
        sweep_started = time.perf_counter()
        ended = await cleanup.run_once()
        sweep_s = time.perf_counter() - sweep_started
        after_keys = sum(await _keys_per_primary(client))
    finally:
        await storage.close()
    section.figures["cluster"] = {
        "sessions": len(sessions),
        "ended": len(ended),
        "sweep_seconds": sweep_s,
        "keys_per_primary_at_peak": per_node,
        "keys": {"start": start_keys, "after_sweep": after_keys},
    }
    section.rows += [
        [
            "cluster: sessions ended by the sweep",
            f"{len(ended):,} of {len(sessions):,}",
            f"3 primaries + 3 replicas; keys per primary at the peak {per_node}, "
            f"{start_keys:,} → {after_keys:,} keys after the sweep (ended records held)",
        ],
        ["cluster: sweep time", f"{fmt(sweep_s, 3)} s", "Cleanup.run_once over all 64 shards"],
    ]
    section.targets.append(
        Target(
            "cleanup",
            f"sweep of {len(sessions):,} expired sessions on the cluster (s)",
            sweep_s,
            MAX_SWEEP_S,
            "<",
            "s",
            f"{len(ended):,} ended; 3 primaries",
        )
    )
