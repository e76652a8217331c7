"""Redis failing under a real server process: every request answered, then back to Redis.

One `weather-agent serve` process on an embedded Redis of this module's own, which the tests
stop and start (`EmbeddedRedis` keeps its port; its data does not survive, like a Redis
restarted without persistence).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import redis

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.reliability.helpers import JSON, chat, client, get_json, wait_until
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

LOAD_USERS = 8
RECONNECT_DEADLINE_S = 10.0  # the README's promise: backoff tops out at 10 s between tries


@pytest.fixture(scope="module")
def fault_server(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    process = ServerProcess(server_redis.url, RATE_LIMIT_PER_MINUTE="0").start()
    yield process
    process.stop()


@pytest.fixture
async def http(
    server_redis: EmbeddedRedis, fault_server: ServerProcess
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the server, once Redis runs and the server is on it (`ok`)."""
    server_redis.start()  # no-op when running
    async with client(fault_server.url) as http:
        await wait_until(lambda: is_status(http, "ok"), RECONNECT_DEADLINE_S, "status ok")
        yield http


async def is_status(http: httpx.AsyncClient, expected: str) -> bool:
    status: str = (await get_json(http, "/system/status"))["status"]
    return status == expected


@dataclass
class Chatter:
    """A user who keeps sending messages, one at a time, until told to stop."""

    user: str
    answers: list[JSON] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def run(self, http: httpx.AsyncClient, stop: asyncio.Event) -> None:
        texts = itertools.cycle(["Weather in Rome?", "and tomorrow?", "Weather in Oslo?", "ok"])
        while not stop.is_set():
            response = await http.post("/chat", json={"userId": self.user, "message": next(texts)})
            if response.status_code == 200:
                self.answers.append(response.json())
            else:
                self.failures.append(f"{response.status_code} {response.text[:200]}")
            await asyncio.sleep(0.05)


def consecutive_counts(answers: list[JSON]) -> bool:
    """Within each session, the answers counted 1, 2, 3... (no turn counted twice or skipped)."""
    by_session: dict[str, list[int]] = {}
    for answer in answers:
        by_session.setdefault(answer["sessionId"], []).append(answer["conversationCount"])
    return all(counts == list(range(1, len(counts) + 1)) for counts in by_session.values())


async def probe_every_route(http: httpx.AsyncClient, user: str, old_session: str) -> list[int]:
    """Each route of the API once (the user's session routes, system routes, streams)."""
    requests: list[tuple[str, str, JSON | None]] = [
        ("GET", f"/sessions/{user}", None),
        ("GET", f"/sessions/{user}/history", None),
        ("GET", f"/sessions/{user}/history/{old_session}", None),
        ("GET", "/system/status", None),
        ("GET", "/system/memory", None),
        ("GET", "/metrics", None),
        ("GET", "/ready", None),
        ("GET", "/health", None),
        (
            "POST",
            "/chat",
            {"userId": f"{user}-stream", "message": "Weather in Lima?", "stream": True},
        ),
        (
            "POST",
            "/agent/invoke",
            {
                "input": {"messages": [{"type": "human", "content": "Weather in Quito?"}]},
                "config": {"configurable": {"user_id": f"{user}-langserve"}},
            },
        ),
        ("POST", f"/sessions/{user}-stream/end", None),
    ]
    statuses = []
    for method, path, body in requests:
        response = await http.request(method, path, json=body)
        statuses.append(response.status_code)
        assert response.status_code < 500, f"{method} {path}: {response.status_code}"
        if body and body.get("stream"):
            assert '"sessionStatus"' in response.text, response.text[-300:]
            assert "event: error" not in response.text
    return statuses


async def test_redis_stopped_mid_conversation_then_back(
    http: httpx.AsyncClient, server_redis: EmbeddedRedis
) -> None:
    user = "fault-ana"
    first = await chat(http, user, "Weather in Rome?")
    assert (first["storage"], first["conversationCount"]) == ("redis", 1)

    # Other users keep talking all along, so Redis also dies in the middle of turns.
    stop = asyncio.Event()
    chatters = [Chatter(f"fault-load-{i}") for i in range(LOAD_USERS)]
    load = [asyncio.create_task(c.run(http, stop)) for c in chatters]
    await asyncio.sleep(1.0)

    down_at = time.monotonic()
    await asyncio.to_thread(server_redis.stop)
    during = await chat(http, user, "and tomorrow?")
    assert during["storage"] == "memory"
    assert during["sessionId"] != first["sessionId"]  # the Redis session stays in Redis
    assert during["conversationCount"] == 1
    status = await get_json(http, "/system/status")
    assert (status["status"], status["storageMode"]) == ("degraded", "memory")
    assert status["redis"]["lastError"]
    statuses = await probe_every_route(http, user, first["sessionId"])
    again = await chat(http, user, "Weather in Paris?")
    assert (again["storage"], again["sessionId"]) == ("memory", during["sessionId"])
    assert again["conversationCount"] == 2
    assert "Paris" in again["response"]
    await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - down_at)))  # ~3 s without Redis
    assert await is_status(http, "degraded")

    await asyncio.to_thread(server_redis.start)  # back, empty
    up_at = time.monotonic()
    outage_s = up_at - down_at
    recovered_s = await wait_until(
        lambda: is_status(http, "ok"), RECONNECT_DEADLINE_S, "status ok after Redis is back", 0.1
    )
    # New sessions land in Redis again: the answer says so and Redis holds the keys.
    newcomer = await chat(http, "fault-newcomer", "Weather in Oslo?")
    assert newcomer["storage"] == "redis"
    sid = newcomer["sessionId"]
    store = redis.Redis.from_url(server_redis.url, decode_responses=True)
    try:
        assert store.get(keys.user_active("fault-newcomer")) == sid
        assert store.hget(keys.session_meta(sid), "conversationCount") == "1"
        assert store.exists(keys.thread(sid)) == 1
        assert store.zscore(keys.deadlines(keys.shard_of("fault-newcomer")), sid) is not None
        redis_keys = store.dbsize()
    finally:
        store.close()
    # The memory session of the outage continues where it started.
    after = await chat(http, user, "and tomorrow?")
    assert (after["storage"], after["sessionId"]) == ("memory", during["sessionId"])
    assert after["conversationCount"] == 3
    assert after["response"].startswith("Tomorrow in Paris")
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*load)

    answers = [a for c in chatters for a in c.answers]
    failures = [f for c in chatters for f in c.failures]
    by_storage = {s: sum(a["storage"] == s for a in answers) for s in ("redis", "memory")}
    print(
        f"\n[redis-faults] outage {outage_s:.2f} s; status ok {recovered_s:.2f} s after Redis "
        f"was back; background turns {len(answers)} ({by_storage}), failures {len(failures)}; "
        f"route statuses during the outage {statuses}; keys in Redis after recovery {redis_keys}"
    )
    assert failures == []
    assert all(c.answers for c in chatters)
    assert all(any(a["storage"] == "memory" for a in c.answers) for c in chatters)
    assert all(consecutive_counts(c.answers) for c in chatters)


async def test_redis_restarted_empty(http: httpx.AsyncClient, server_redis: EmbeddedRedis) -> None:
    users = [f"restart-{i}" for i in range(10)]
    before = {}
    for user in users:
        await chat(http, user, "Weather in Rome?")
        before[user] = await chat(http, user, "and tomorrow?")
        assert (before[user]["storage"], before[user]["conversationCount"]) == ("redis", 2)

    started = time.monotonic()
    await asyncio.to_thread(server_redis.stop)
    await asyncio.to_thread(server_redis.start)
    restart_s = time.monotonic() - started

    after = {user: await chat(http, user, "Weather in Oslo?") for user in users}
    for user in users:
        answer = after[user]
        assert answer["sessionId"] != before[user]["sessionId"]
        assert (answer["conversationCount"], answer["sessionStatus"]) == (1, "active")
        assert "Oslo" in answer["response"]
        listing = await get_json(http, f"/sessions/{user}")
        assert [s["sessionId"] for s in listing["sessions"]] == [answer["sessionId"]]
        history = await get_json(http, f"/sessions/{user}/history")
        assert [m["content"] for m in history["messages"] if m["role"] == "user"] == [
            "Weather in Oslo?"
        ]
    storages = {answer["storage"] for answer in after.values()}
    status = await get_json(http, "/system/status")
    print(
        f"\n[redis-faults] Redis restarted empty in {restart_s:.2f} s: {len(users)} users got "
        f"new sessions (storage {sorted(storages)}), status {status['status']}"
    )
    # Redis answered again at once: the stale pooled connections are retried, not "down".
    assert storages == {"redis"}
    assert status["status"] == "ok"
    assert json.dumps(status["sessions"]["endedByReason"])  # stats readable on the new Redis
