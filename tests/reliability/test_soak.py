"""Soak: 100 users talking for SOAK_SECONDS (default 60) to a real server on short limits.

Sessions end all the time (5 conversations, 3 s of inactivity, 10 s of age, cleanup every
500 ms). Checked: no error at all; no lost turn (every answered turn is counted in its
session: in its history while active, in its ended record's conversationCount afterwards);
Redis `used_memory`, sampled every second, stays under baseline + a budget per user; and once
everything ended, only what legitimately outlives sessions is left: the ended-session
records and the user facts. Without them, `used_memory` is back within 5% of the baseline.

The baseline is taken after a warm-up (100 users, one turn each, sessions ended by hand, and
every read path once): it includes what any running service holds (scripts loaded, the
pool's client connections, the statistics hash, Redis's per-command latency histograms).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import redis.asyncio as aioredis

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.reliability.helpers import (
    JSON,
    chat,
    client,
    gather_limited,
    get_json,
    wait_until,
)
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
USERS = 100
MAX_CONVERSATIONS = 5
SESSION_DURATION = 10
LIMITS = {
    "RATE_LIMIT_PER_MINUTE": "0",
    "MAX_CONVERSATIONS_PER_SESSION": str(MAX_CONVERSATIONS),
    "INACTIVITY_TIMEOUT": "3",
    "SESSION_DURATION": str(SESSION_DURATION),
    "CLEANUP_INTERVAL": "500",
}
# Redis budget of one user's active session (meta, thread of <= 5 conversations, pointer,
# lock): measured ~2-6 KB; 32 KiB leaves room for allocator slack.
SESSION_BUDGET = 32 * 1024
RECORD_BUDGET = 1024  # one ended-session record (a hash field with a TTL): ~0.3-0.55 KB
FACTS_BUDGET = 1024  # one user's facts (a string key with a TTL)
CITIES = ["Rome", "Oslo", "Paris", "Lima", "Madrid", "Tokyo", "Quito", "Cairo", "Berlin"]
NAMES = ["Ana", "Bob", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo"]


@pytest.fixture(scope="module")
def soak_server(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    process = ServerProcess(server_redis.url, **LIMITS).start()
    yield process
    process.stop()


@dataclass
class SoakUser:
    """One simulated user: bursts of messages with short pauses, then a short or long break."""

    index: int
    answers: list[JSON] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks: int = 0
    past_deadline: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def pace(self) -> tuple[float, float]:
        """Seconds between messages: a quarter of the users are slow (their sessions last
        into SESSION_DURATION before the conversation limit), the others quick."""
        return (2.0, 2.7) if self.index % 4 == 0 else (0.3, 1.0)

    @property
    def user(self) -> str:
        return f"soak-{self.index:03d}"

    def messages(self, rng: random.Random) -> Iterator[str]:
        yield f"I'm {NAMES[self.index % len(NAMES)]}"
        while True:
            city = rng.choice(CITIES)
            yield f"Weather in {city}?"
            yield rng.choice(["and tomorrow?", "and this weekend?", "what about Paris?"])
            yield rng.choice(["thanks", "in Fahrenheit please", "hello"])

    async def run(self, http: httpx.AsyncClient, until: float) -> None:
        rng = random.Random(self.index)
        texts = self.messages(rng)
        # Users come and go: ~15-20 of the 100 are in a burst at any time (~10 turns/s).
        await asyncio.sleep(rng.uniform(0, min(15.0, SOAK_SECONDS / 3)))
        while time.monotonic() < until:
            for _ in range(rng.randint(1, 6)):
                if time.monotonic() >= until:
                    return
                await self.send(http, next(texts))
                if self.answers and rng.random() < 0.15:
                    await self.check_history(http, self.answers[-1])
                await asyncio.sleep(rng.uniform(*self.pace))
            # A break: short ones let the session run on into its conversation limit or its
            # duration, long ones end it by inactivity.
            pause = rng.uniform(0.5, 2.5) if rng.random() < 0.3 else rng.uniform(15.0, 35.0)
            await asyncio.sleep(max(0.0, min(pause, until - time.monotonic())))

    async def send(self, http: httpx.AsyncClient, text: str) -> None:
        sent = time.monotonic()
        try:
            response = await http.post("/chat", json={"userId": self.user, "message": text})
        except httpx.HTTPError as error:
            self.errors.append(f"{type(error).__name__}: {error}")
            return
        self.latencies.append(time.monotonic() - sent)
        if response.status_code != 200:
            self.errors.append(f"{response.status_code} {response.text[:200]}")
            return
        self.answers.append(response.json())

    async def check_history(self, http: httpx.AsyncClient, last: JSON) -> None:
        """Mid-run: the session holds every turn answered in it so far."""
        self.checks += 1
        path = f"/sessions/{self.user}/history/{last['sessionId']}"
        try:
            body = await get_json(http, path)
        except (AssertionError, httpx.HTTPError) as error:
            self.errors.append(f"history: {error}")
            return
        start_ms = int(last["sessionId"].rsplit(":", 1)[1])
        if time.time() * 1000 >= start_ms + SESSION_DURATION * 1000:
            # Past its hard deadline, not swept yet: still listed, its thread still there.
            self.past_deadline += 1
        if body["status"] == "active":
            said = [m for m in body["messages"] if m["role"] == "user"]
            if len(said) != last["conversationCount"] or len(body["messages"]) != 2 * len(said):
                self.errors.append(f"history of {last}: {body}")
        elif body["record"]["conversationCount"] != last["conversationCount"]:
            self.errors.append(f"record of {last}: {body}")


def per_session(answers: list[JSON]) -> dict[str, list[JSON]]:
    sessions: dict[str, list[JSON]] = {}
    for answer in answers:
        sessions.setdefault(answer["sessionId"], []).append(answer)
    return sessions


async def reconcile(http: httpx.AsyncClient, user: SoakUser) -> tuple[int, dict[str, int]]:
    """Every answered turn is counted by its session's ended record; returns (turns, reasons)."""
    sessions = per_session(user.answers)
    for session_id, answers in sessions.items():
        counts = [a["conversationCount"] for a in answers]
        assert counts == list(range(1, len(counts) + 1)), (session_id, counts)
        assert {a["storage"] for a in answers} == {"redis"}, session_id
        for answer in answers[:-1]:
            assert answer["sessionStatus"] == "active", answer
        if answers[-1]["sessionStatus"] == "ended":
            assert answers[-1]["endReason"] == "conversation_limit", answers[-1]
            assert answers[-1]["conversationCount"] == MAX_CONVERSATIONS
    listing = await get_json(http, f"/sessions/{user.user}")
    assert listing["activeSessions"] == 0, listing
    history = await get_json(http, f"/sessions/{user.user}/history?limit=1000")
    records = {r["sessionId"]: r for r in history["endedSessions"]}
    assert records.keys() == sessions.keys(), (user.user, records.keys() ^ sessions.keys())
    reasons: dict[str, int] = {}
    for session_id, record in records.items():
        answered = len(sessions[session_id])
        assert record["conversationCount"] == answered, (record, answered)
        if answered == MAX_CONVERSATIONS:
            assert record["endReason"] == "conversation_limit", record
        else:
            assert record["endReason"] in ("inactivity", "duration"), record
        reasons[record["endReason"]] = reasons.get(record["endReason"], 0) + 1
    return len(user.answers), reasons


async def used_memory(store: aioredis.Redis) -> int:
    info = await store.info("memory")
    return int(info["used_memory"])


MEMORY_PARTS = (
    "used_memory_dataset",
    "used_memory_overhead",
    "mem_clients_normal",
    "used_memory_vm_eval",
    "used_memory_scripts_eval",
)


async def memory_parts(store: aioredis.Redis) -> dict[str, int]:
    """Where Redis memory goes: data, client connections, cached scripts, keys, clients."""
    info = await store.info("memory")
    parts = {name.removeprefix("used_memory_"): int(info[name]) for name in MEMORY_PARTS}
    parts["cached_scripts"] = int(info["number_of_cached_scripts"])
    parts["keys"] = int(await store.dbsize())
    parts["clients"] = int((await store.info("clients"))["connected_clients"])
    return parts


async def settled_memory(store: aioredis.Redis) -> int:
    """The median of three samples, 0.5 s apart (allocator and client buffers settle).

    Redis's Lua heap (where the service's scripts run) is part of `used_memory` and swings
    by ~100 KB with its garbage collector: a full collection first takes that noise out.
    """
    await store.eval("collectgarbage('collect') return 0", 0)
    samples = []
    for _ in range(3):
        await asyncio.sleep(0.5)
        samples.append(await used_memory(store))
    return int(statistics.median(samples))


async def sample_memory(store: aioredis.Redis, stop: asyncio.Event, samples: list[int]) -> None:
    while not stop.is_set():
        samples.append(await used_memory(store))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def kib(size: float) -> str:
    return f"{size / 1024:.1f} KiB"


async def warm_up(http: httpx.AsyncClient, store: aioredis.Redis) -> None:
    """What any running service has done before the baseline is taken.

    As many users at once as in the soak (the server's Redis pool opens its connections,
    scripts load, the gazetteer is built), their sessions then ended by hand; and every
    read path of the soak and of this test once: Redis allocates a latency histogram
    (INFO latencystats, ~19 KB) for each command name the first time it runs, a fixed cost
    that is not session memory and must not count as a difference from the baseline.
    """
    warm = [f"warm-{i:03d}" for i in range(USERS)]
    answers = await gather_limited(USERS, [chat(http, u, "Weather in Rome?") for u in warm])
    await chat(http, warm[0], "and tomorrow?")  # a second turn replaces the first checkpoint
    first = f"/sessions/{warm[0]}/history/{answers[0]['sessionId']}"
    await get_json(http, first)  # an active session's messages
    await gather_limited(20, [http.post(f"/sessions/{u}/end") for u in warm])
    for path in (first, f"/sessions/{warm[0]}", f"/sessions/{warm[0]}/history?limit=1000"):
        await get_json(http, path)  # an ended record, listings
    await get_json(http, "/system/status")
    await memory_parts(store)
    [key async for key in store.scan_iter("wa:*", count=1000)]
    await store.memory_usage(keys.CLEANUP_STATS)
    await store.delete("wa:nothing")


async def test_soak(soak_server: ServerProcess, server_redis: EmbeddedRedis) -> None:
    store = aioredis.Redis.from_url(server_redis.url, decode_responses=True)
    http = client(soak_server.url, USERS + 10)
    try:
        await warm_up(http, store)
        baseline = await settled_memory(store)
        baseline_parts = await memory_parts(store)
        commands = set(await store.info("latencystats"))

        until = time.monotonic() + SOAK_SECONDS
        users = [SoakUser(i) for i in range(USERS)]
        samples: list[int] = []
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(sample_memory(store, stop_sampling, samples))
        started = time.monotonic()
        await asyncio.gather(*(u.run(http, until) for u in users))
        load_s = time.monotonic() - started

        async def all_ended() -> bool:
            status = await get_json(http, "/system/status")
            sessions = status["sessions"]
            return bool(sessions["activeSessions"] == 0 and sessions["memoryFallbackActive"] == 0)

        drain_s = await wait_until(all_ended, 30, "every session ended", 0.5)
        stop_sampling.set()
        await sampler

        errors = [f"{u.user}: {e}" for u in users for e in u.errors]
        assert errors == [], errors[:10]
        results = await gather_limited(20, [reconcile(http, u) for u in users])
        turns = sum(t for t, _ in results)
        reasons: dict[str, int] = {}
        for _, by_reason in results:
            for reason, count in by_reason.items():
                reasons[reason] = reasons.get(reason, 0) + count
        sessions = sum(reasons.values())
        status = await get_json(http, "/system/status")
        await asyncio.sleep(1.0)  # two more cleanup runs over an empty index
        final = await settled_memory(store)
        final_parts = await memory_parts(store)

        # What is left in Redis: only what outlives sessions (no key of any session).
        left: dict[str, list[str]] = {"records": [], "facts": [], "other": []}
        async for key in store.scan_iter("*", count=1000):
            if key.startswith("wa:{") and key.endswith(":ended"):
                left["records"].append(key)
            elif key.startswith("wa:store:users/"):
                left["facts"].append(key)
            elif not (key in (keys.CLEANUP_STATS, keys.PROBE) or key.endswith("}:stats")):
                left["other"].append(key)
        soak_keys = [k for k in left["records"] + left["facts"] if "soak-" in k]
        legit_usage = sum([await store.memory_usage(k) or 0 for k in soak_keys])
        await store.delete(*soak_keys)
        residual = await settled_memory(store)
        residual_parts = await memory_parts(store)
        new_commands = set(await store.info("latencystats")) - commands
    finally:
        await http.aclose()
        await store.aclose()

    latencies = [x for u in users for x in u.latencies]
    bound = baseline + USERS * SESSION_BUDGET + sessions * RECORD_BUDGET + USERS * FACTS_BUDGET
    peak = max(samples)
    stats = status["sessions"]
    report = [
        f"{USERS} users for {load_s:.1f} s (SOAK_SECONDS={SOAK_SECONDS:g}): {turns} turns "
        f"({turns / load_s:.1f}/s), latency median {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s; errors 0, lost turns 0",
        f"{sessions} sessions ended {reasons}; server stats {stats['endedByReason']}, "
        f"cleanup runs {stats['cleanup']['runs']}; all ended {drain_s:.1f} s after the load",
        f"{sum(u.checks for u in users)} mid-run history checks "
        f"({sum(u.past_deadline for u in users)} of sessions past their hard deadline)",
        f"Redis used_memory: baseline {kib(baseline)} (after the warm-up); {len(samples)} "
        f"samples, max {kib(peak)} = baseline + {kib(peak - baseline)} "
        f"({(peak - baseline) / USERS / 1024:.1f} KiB per user)",
        f"bound {kib(bound)} = baseline + {USERS} x {kib(SESSION_BUDGET)} sessions + "
        f"{sessions} x {kib(RECORD_BUDGET)} records + {USERS} x {kib(FACTS_BUDGET)} facts",
        f"after the soak {kib(final)} = baseline + {kib(final - baseline)}; the soak users' "
        f"ended records and facts ({len(soak_keys)} keys) legitimately remain: MEMORY USAGE "
        f"{kib(legit_usage)} ({legit_usage / sessions:.0f} B per ended session)",
        f"without them {kib(residual)}: {(residual - baseline) / baseline:+.2%} of the baseline",
        f"INFO parts: baseline {baseline_parts}; after the soak {final_parts}; without the "
        f"records and facts {residual_parts}",
    ]
    print("".join(f"\n[soak] {line}" for line in report))
    assert left["other"] == [], left["other"][:10]  # no session key, pointer, lock or index
    assert len([k for k in left["records"] if "soak-" in k]) == USERS
    assert peak <= bound
    assert new_commands == set(), f"exercise {new_commands} in warm_up() before the baseline"
    assert abs(residual - baseline) <= 0.05 * baseline
