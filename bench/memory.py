"""Target 2, bytes per session: Redis memory of one session vs the JSON of its messages.

Sessions run through the real `SessionManager` on Redis (offline model, simulated weather,
the scripted conversation), measured after 10, 20 and 40 conversations. The conversation
limit is raised to the largest point (the default 20 would end the session at 20), nothing
else changes. Memory is measured two ways:

* keys: `MEMORY USAGE key SAMPLES 0` summed over the session's keys: its thread hash, its
  meta hash, the user's active-session pointer and the user's facts item (for the stock
  savers, every key whose name holds the session id, instead of our thread hash);
* used_memory: the growth of Redis `used_memory` (less `mem_clients_normal` and
  `used_memory_vm_eval`, the client buffers and the Lua heap, which move with the traffic)
  since before the sessions started, divided by the number of sessions; this includes
  shared structures: the deadline index, and for the stock savers their search indexes.

The JSON size is `len(json.dumps([m.model_dump() for m in messages]))` of the thread's
messages as the graph returns them.

The ablation row runs our saver with `bench.cached_saver`'s in-process cache: its Redis bytes,
and the process memory the cache holds per session (`tracemalloc`, before and after dropping
what it holds), which the service saves by not having it.
"""

from __future__ import annotations

import gc
import itertools
import json
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.checkpoint.redis.ashallow import AsyncShallowRedisSaver

from bench.cached_saver import CachedSessionSaver
from bench.common import (
    TIMES,
    Section,
    Target,
    bench_settings,
    fmt,
    fmt_bytes,
    glob_escape,
    memory_usage,
    message,
    offline_parts,
    scan_keys,
    settled_used_memory,
)
from server.service import make_manager
from session_policy import keys
from session_policy.policy import FACTS_KEY, FACTS_NAMESPACE
from session_policy.storage import Storage
from session_policy.user_memory import item_key

MAX_FACTOR = 2.0
ALLOWANCE = 4096
LINEAR_SLACK = 1.25  # per-turn growth 20->40 may exceed 10->20 by this factor at most
MIN_PEER_FACTOR = 2.0  # the stock savers' bytes per session / ours


@dataclass(frozen=True)
class BytesSizes:
    points: tuple[int, ...] = (10, 20, 40)
    sessions: int = 3
    settle_s: float = 1.0  # at most, waiting for used_memory to stop moving


@dataclass
class Point:
    turns: int
    json_bytes: float
    key_bytes: float
    used_memory_bytes: float
    held_bytes: float | None = None  # in process, by the ablation's cache

    @property
    def limit(self) -> float:
        return MAX_FACTOR * self.json_bytes + ALLOWANCE

    def to_json(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "json_bytes": self.json_bytes,
            "key_bytes": self.key_bytes,
            "used_memory_bytes": self.used_memory_bytes,
            "limit_bytes": self.limit,
            "key_ratio_to_json": self.key_bytes / self.json_bytes,
            "used_memory_ratio_to_json": self.used_memory_bytes / self.json_bytes,
            "held_in_process_bytes": self.held_bytes,
        }


async def _session_keys(
    client: aioredis.Redis, user: str, session_id: str, stock: bool
) -> list[str]:
    found = [
        keys.session_meta(session_id),
        keys.user_active(user),
        item_key((FACTS_NAMESPACE, user), FACTS_KEY),
    ]
    if stock:  # the stock savers' keys all hold the thread id (plus their search indexes)
        found += [k.decode() for k in await scan_keys(client, f"*{glob_escape(session_id)}*")]
    else:
        found.append(keys.thread(session_id))
    return list(dict.fromkeys(found))


async def _measure(
    url: str,
    saver_kind: str,
    sizes: BytesSizes,
) -> list[Point]:
    # one more than the last point: reaching the limit ends the session (and deletes it)
    settings = bench_settings(url, max_conversations_per_session=max(sizes.points) + 1)
    client = aioredis.Redis.from_url(url)
    await client.flushall()
    storage = Storage(settings, url)
    stock: BaseCheckpointSaver[Any] | None = None
    closing: Any = None
    if saver_kind == "stock":
        closing = AsyncRedisSaver(redis_url=url)
    elif saver_kind == "shallow":
        closing = AsyncShallowRedisSaver(redis_url=url)
    if closing is not None:
        stock = await closing.__aenter__()  # asetup(): the search indexes
        assert storage.redis is not None
        assert stock is not None
        storage.redis.checkpointer = stock
    cache: CachedSessionSaver | None = None
    if saver_kind == "cached":
        assert storage.redis is not None
        assert isinstance(storage.client, aioredis.Redis)  # the bench runs on one Redis
        cache = CachedSessionSaver(storage.client)
        storage.redis.checkpointer = cache
        tracemalloc.start()
    await storage.start()
    model, weather = offline_parts()
    manager = make_manager(settings, storage, model=model, weather=weather)
    assert storage.redis is not None
    graph = manager.graph(storage.redis)
    points: list[Point] = []
    try:
        # warm-up: load the scripts, create the shared keys, then leave nothing behind
        await manager.chat("bench-bytes-warmup", message(0))
        await manager.end_user_sessions("bench-bytes-warmup")
        before = _data_memory(await settled_used_memory(client, seconds=sizes.settle_s))
        users = [f"bench-bytes-{saver_kind}-{i}" for i in range(sizes.sessions)]
        sessions: dict[str, str] = {}
        for turn in range(max(sizes.points)):
            for user in users:
                result = await manager.chat(user, message(turn))
                sessions[user] = result.session_id
            done = turn + 1
            if done not in sizes.points:
                continue
            used = _data_memory(await settled_used_memory(client, seconds=sizes.settle_s))
            json_total = key_total = 0
            for user, session_id in sessions.items():
                state = await graph.aget_state({"configurable": {"thread_id": session_id}})
                messages = state.values.get("messages", [])
                json_total += len(json.dumps([m.model_dump() for m in messages]))
                key_total += await memory_usage(
                    client, await _session_keys(client, user, session_id, stock is not None)
                )
            n = len(sessions)
            point = Point(done, json_total / n, key_total / n, (used - before) / n)
            if cache is not None:
                del state, messages
                point.held_bytes = _held_bytes(cache) / n
            points.append(point)
    finally:
        if cache is not None:
            tracemalloc.stop()
        await storage.close()
        if closing is not None:
            await closing.__aexit__(None, None, None)
        await client.flushall()
        await client.aclose()
    return points


def _held_bytes(cache: CachedSessionSaver) -> int:
    """What the cache holds in process: traced memory with it, less without (it is emptied;
    each session's next turn reads its thread from Redis again)."""
    gc.collect()
    with_cache = tracemalloc.get_traced_memory()[0]
    cache.forget_all()
    gc.collect()
    return with_cache - tracemalloc.get_traced_memory()[0]


def _data_memory(mem: dict[str, int]) -> int:
    """used_memory less the clients' buffers and the Lua VM (they move with the traffic)."""
    return mem["used_memory"] - mem["mem_clients_normal"] - mem["used_memory_vm_eval"]


def _growth(points: list[Point], attr: str) -> list[float]:
    """Bytes added per turn between consecutive points."""
    out = []
    for a, b in itertools.pairwise(points):
        out.append((getattr(b, attr) - getattr(a, attr)) / (b.turns - a.turns))
    return out


async def run(url: str, sizes: BytesSizes, include_stock: bool = True) -> Section:
    started = time.perf_counter()
    section = Section(
        "bytes",
        "2. Bytes per session (mean of sessions; ratio = Redis bytes ÷ JSON bytes)",
        [
            "saver",
            "turns",
            "JSON",
            "keys (MEMORY USAGE)",
            "÷ JSON",
            "used_memory Δ",
            "÷ JSON",
            f"limit 2{TIMES}JSON+4 KB",
        ],
    )
    section.notes.append(
        f"{sizes.sessions} sessions through SessionManager on Redis, the scripted conversation "
        f"(tool calls included), MAX_CONVERSATIONS_PER_SESSION={max(sizes.points) + 1}"
    )
    kinds = ["ours", "cached", "stock", "shallow"] if include_stock else ["ours", "cached"]
    labels = {
        "ours": "RedisSessionSaver",
        "cached": "ablation: ours + in-process cache (info)",
        "stock": "AsyncRedisSaver",
        "shallow": "AsyncShallowRedisSaver",
    }
    measured: dict[str, list[Point]] = {}
    for kind in kinds:
        points = measured[kind] = await _measure(url, kind, sizes)
        section.figures[kind] = {
            "label": labels[kind],
            "points": [p.to_json() for p in points],
            "key_growth_per_turn": _growth(points, "key_bytes"),
            "json_growth_per_turn": _growth(points, "json_bytes"),
        }
        for p in points:
            section.rows.append(
                [
                    labels[kind],
                    str(p.turns),
                    fmt_bytes(p.json_bytes),
                    fmt_bytes(p.key_bytes),
                    fmt(p.key_bytes / p.json_bytes) + TIMES,
                    fmt_bytes(p.used_memory_bytes),
                    fmt(p.used_memory_bytes / p.json_bytes) + TIMES,
                    fmt_bytes(p.limit),
                ]
            )
        if kind != "ours":
            continue
        for p in points:
            section.targets.append(
                Target(
                    "bytes",
                    f"{p.turns} turns: keys ÷ (2{TIMES}JSON + 4 KB)",
                    p.key_bytes / p.limit,
                    1.0,
                    "<=",
                    TIMES,
                    f"{fmt_bytes(p.key_bytes)} vs limit {fmt_bytes(p.limit)} "
                    f"(used_memory Δ {fmt_bytes(p.used_memory_bytes)}, "
                    f"{fmt(p.used_memory_bytes / p.limit)}{TIMES} the limit)",
                )
            )
        growth = _growth(points, "key_bytes")
        json_growth = _growth(points, "json_bytes")
        if len(growth) >= 2 and growth[0] > 0:
            section.targets.append(
                Target(
                    "bytes",
                    "linear: bytes/turn (last span) ÷ bytes/turn (first span)",
                    growth[-1] / growth[0],
                    LINEAR_SLACK,
                    "<=",
                    TIMES,
                    "per-turn growth "
                    + " → ".join(fmt_bytes(g) for g in growth)
                    + " (JSON: "
                    + " → ".join(fmt_bytes(g) for g in json_growth)
                    + ")",
                )
            )
    _peer_targets(section, measured, labels)
    held = measured["cached"]
    section.ablations.append(
        "in-process latest-checkpoint cache, process memory held per session at "
        + " / ".join(f"{p.turns}" for p in held)
        + " turns: "
        + " / ".join(fmt_bytes(p.held_bytes or 0) for p in held)
        + "; Redis keys with it "
        + " / ".join(fmt_bytes(p.key_bytes) for p in held)
        + ", without "
        + " / ".join(fmt_bytes(p.key_bytes) for p in measured["ours"])
    )
    section.seconds = time.perf_counter() - started
    return section


def _peer_targets(
    section: Section, measured: dict[str, list[Point]], labels: dict[str, str]
) -> None:
    """Ahead of the peers: their bytes per session ÷ ours, at every point (the least)."""
    ours = measured["ours"]
    for kind in ("stock", "shallow"):
        if kind not in measured:
            continue
        ratios = [p.key_bytes / o.key_bytes for p, o in zip(measured[kind], ours, strict=True)]
        section.targets.append(
            Target(
                "bytes",
                f"{labels[kind]} ÷ ours, bytes per session (least of the points)",
                min(ratios),
                MIN_PEER_FACTOR,
                ">=",
                TIMES,
                " / ".join(fmt(r) + TIMES for r in ratios)
                + " at "
                + " / ".join(str(p.turns) for p in ours)
                + " turns",
            )
        )
