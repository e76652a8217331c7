"""Redis that answers but refuses, or stops answering: no 5xx, fallback, and recovery.

Each case runs a real `weather-agent serve` process on an embedded Redis of its own, and
puts that Redis in the state under test: full (`maxmemory` with `noeviction`), demoted to a
read-only replica, paused. Messages must all be answered (from memory), `/system/status`
must say `degraded` and why, reads of what Redis still holds must keep working, and new
sessions must go back to Redis once it takes writes again. Redis state changes that went
well before this suite (scripts flushed, data flushed, connections killed) are locked in,
and so is a client connection surviving a request that failed on a bug.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.reliability.helpers import JSON, chat, client, get_json, wait_until
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

RECOVERY_S = 15.0  # the README: back within ~10 s (probe backoff tops out at 10 s)


@contextmanager
def served(**env: str) -> Iterator[tuple[EmbeddedRedis, ServerProcess, redis.Redis]]:
    """A Redis of the test's own, a server on it, and a client of that Redis."""
    with EmbeddedRedis() as store_server:
        server = ServerProcess(store_server.url, RATE_LIMIT_PER_MINUTE="0", **env).start()
        store = redis.Redis.from_url(store_server.url, decode_responses=True)
        try:
            yield store_server, server, store
        finally:
            store.close()
            server.stop()


async def status(http: httpx.AsyncClient) -> JSON:
    return await get_json(http, "/system/status")


async def is_ok(http: httpx.AsyncClient) -> bool:
    return bool((await status(http))["status"] == "ok")


def gauge(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no {name}{labels} in /metrics")


def warnings_in(log: Path, text: str) -> int:
    return sum(text in line for line in log.read_text(errors="replace").splitlines())


async def assert_back_on_redis(
    http: httpx.AsyncClient, store: redis.Redis, user: str
) -> dict[str, float]:
    """Status `ok` again, and a new user's session is stored in this Redis."""
    took = await wait_until(lambda: is_ok(http), RECOVERY_S, "status ok again", 0.2)
    answer = await chat(http, user, "Weather in Oslo?")
    assert answer["storage"] == "redis"
    assert store.get(keys.user_active(user)) == answer["sessionId"]
    assert store.exists(keys.thread(answer["sessionId"])) == 1
    return {"recovered_s": round(took, 2)}


async def test_full_redis() -> None:
    with served() as (_, server, store):
        async with client(server.url) as http:
            await wait_until(lambda: is_ok(http), 10, "status ok")
            old = [f"oom-old-{i}" for i in range(5)]
            for user in old:
                assert (await chat(http, user, "Weather in Rome?"))["storage"] == "redis"

            store.config_set("maxmemory-policy", "noeviction")
            used = int(store.info("memory")["used_memory"])
            store.config_set("maxmemory", used + 1024)  # just above: the next writes fill it
            answers = []
            for i in range(20):
                user = old[i // 2 % 5] if i % 2 == 0 else f"oom-new-{i}"
                answers.append(await chat(http, user, "and tomorrow?"))  # each one a 200
            assert any(a["storage"] == "memory" for a in answers)
            report = await status(http)
            assert report["status"] == "degraded"
            assert "OOM" in report["reason"], report
            assert report["redis"]["readable"] is True

            # Reads go on where Redis still reads: the old Redis session is still listed.
            moved = next(
                a["userId"] for a in answers if a["userId"] in old and a["storage"] == "memory"
            )
            listing = await get_json(http, f"/sessions/{moved}")
            assert {s["storage"] for s in listing["sessions"]} == {"redis", "memory"}
            memory = await get_json(http, "/system/memory")
            assert memory["redis"]["available"] is True
            assert memory["redis"]["writable"] is False
            assert (await http.get(f"/sessions/{moved}/history")).status_code == 200
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            assert gauge(metrics.text, "weather_agent_storage_mode", mode="memory") == 1
            assert gauge(metrics.text, "weather_agent_storage_degraded", kind="OOM") == 1

            store.config_set("maxmemory", 0)  # memory freed
            figures = await assert_back_on_redis(http, store, "oom-after")
    warned = warnings_in(server.log, "Redis refuses writes: OOM")
    by_storage = {s: sum(a["storage"] == s for a in answers) for s in ("redis", "memory")}
    print(f"\n[refusals] full Redis: 20 answered {by_storage}, OOM warnings {warned}, {figures}")
    assert warned == 1  # once per change of state, not once per request


async def test_primary_demoted_to_replica() -> None:
    """The REDIS_URL's Redis becomes a read-only replica (a failover, with the DNS name
    still pointing at the old primary), then is promoted back."""
    with served() as (store_server, server, store), EmbeddedRedis() as other_server:
        other = redis.Redis.from_url(other_server.url, decode_responses=True)
        async with client(server.url) as http:
            await wait_until(lambda: is_ok(http), 10, "status ok")
            first = await chat(http, "ro-ana", "Weather in Rome?")
            assert first["storage"] == "redis"

            # Fail over to `other`: it copies the data, is promoted, the old primary follows it.
            other.replicaof("127.0.0.1", store_server.port)
            await wait_until(lambda: synced(other, first["sessionId"]), 10, "replica in sync")
            other.replicaof("NO", "ONE")
            store.replicaof("127.0.0.1", other_server.port)
            await wait_until(lambda: synced(store, first["sessionId"]), 10, "demoted in sync")

            report = await status(http)  # no traffic needed: status probes with a write
            assert (report["status"], report["storageMode"]) == ("degraded", "memory")
            assert "READONLY" in report["reason"], report
            answers = [
                await chat(http, user, "Weather in Paris?")
                for user in ["ro-ana", *(f"ro-new-{i}" for i in range(9))]
            ]
            assert {a["storage"] for a in answers} == {"memory"}
            listing = await get_json(http, "/sessions/ro-ana")  # the replica still reads
            assert first["sessionId"] in {s["sessionId"] for s in listing["sessions"]}
            history = await get_json(http, f"/sessions/ro-ana/history/{first['sessionId']}")
            assert [m["content"] for m in history["messages"] if m["role"] == "user"] == [
                "Weather in Rome?"
            ]
            # Ending it needs a write: a clear 503, not a 500 and not a silent no-op.
            ended = await http.post("/sessions/ro-ana/end")
            assert ended.status_code == 503, ended.text
            assert ended.json()["error"]["code"] == "storage_unavailable"

            store.replicaof("NO", "ONE")
            figures = await assert_back_on_redis(http, store, "ro-after")
        other.close()
    print(f"\n[refusals] demoted primary: 10 answered from memory, {figures}")


async def synced(replica: redis.Redis, session_id: str) -> bool:
    info = replica.info("replication")
    return bool(info.get("master_link_status") == "up" and replica.exists(keys.thread(session_id)))


async def test_paused_redis() -> None:
    """Redis stops answering: a turn waits at most REDIS_TIMEOUT, then is answered from
    memory; once Redis answers again new sessions go back to it."""
    pause_ms = 8_000
    with served(REDIS_TIMEOUT="1") as (_, server, store):
        async with client(server.url) as http:
            await wait_until(lambda: is_ok(http), 10, "status ok")
            await chat(http, "pause-ana", "Weather in Rome?")
            paused_at = time.monotonic()
            store.client_pause(pause_ms, all=True)
            started = time.monotonic()
            answer = await chat(http, "pause-ana", "and tomorrow?")
            waited = time.monotonic() - started
            assert answer["storage"] == "memory"
            # Answered while Redis was still paused: it did not wait for Redis.
            assert time.monotonic() - paused_at < pause_ms / 1000
            report = await status(http)
            assert report["status"] == "degraded"
            assert "in time" in report["reason"], report
            others = [await chat(http, f"pause-new-{i}", "Weather in Lima?") for i in range(5)]
            assert {a["storage"] for a in others} == {"memory"}
            assert time.monotonic() - paused_at < pause_ms / 1000
            figures = await assert_back_on_redis(http, store, "pause-after")
    print(f"\n[refusals] paused Redis: first turn answered in {waited:.2f} s, {figures}")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: Any) -> tuple[int, Any]:
    conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read())
    assert response.getheader("connection") != "close"
    return response.status, payload


def test_connection_survives_a_failed_request() -> None:
    """A request that fails on a bug (corrupt data in Redis) is a JSON 500, and the next
    request goes over the same kept-alive connection, on `/chat` and `/agent/invoke`."""
    with served() as (_, server, store):
        store.rpush(keys.user_active("corrupt-type"), "x")  # WRONGTYPE for the session script
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            code, first = request(
                conn, "POST", "/chat", {"userId": "corrupt-count", "message": "Hi"}
            )
            assert code == 200
            # Not a Redis error: a count that is not a number fails in our own code.
            store.hset(keys.session_meta(first["sessionId"]), "conversationCount", "many")
            probes: list[tuple[str, str, Any]] = [
                ("POST", "/chat", {"userId": "corrupt-count", "message": "Hi"}),
                ("GET", "/health", None),
                ("POST", "/chat", {"userId": "corrupt-type", "message": "Hi"}),
                ("POST", "/chat", {"userId": "fine-1", "message": "Hi"}),
                (
                    "POST",
                    "/agent/invoke",
                    {
                        "input": {"messages": [{"type": "human", "content": "Hi"}]},
                        "config": {"configurable": {"user_id": "corrupt-type"}},
                    },
                ),
                (
                    "POST",
                    "/agent/invoke",
                    {
                        "input": {"messages": [{"type": "human", "content": "Hi"}]},
                        "config": {"configurable": {"user_id": "fine-2"}},
                    },
                ),
            ]
            conn.connect()
            sock = conn.sock
            statuses = []
            for method, path, body in probes:
                code, payload = request(conn, method, path, body)
                statuses.append(code)
                if code == 500:
                    assert payload["error"]["code"] == "internal_error"
                assert conn.sock is sock, "the server closed the connection"
        finally:
            conn.close()
    assert statuses == [500, 200, 500, 200, 500, 200]
    log = server.log.read_text(errors="replace")
    assert "Exception in ASGI application" not in log


async def test_scripts_data_and_connections_flushed_mid_conversation() -> None:
    with served() as (_, server, store):
        async with client(server.url) as http:
            await wait_until(lambda: is_ok(http), 10, "status ok")
            first = await chat(http, "flush-ana", "Weather in Rome?")
            store.script_flush()
            second = await chat(http, "flush-ana", "and tomorrow?")
            assert (second["sessionId"], second["conversationCount"]) == (first["sessionId"], 2)
            assert second["response"].startswith("Tomorrow in Rome")

            store.client_kill_filter(_type="normal", skipme=True)
            third = await chat(http, "flush-ana", "Weather in Oslo?")
            assert (third["sessionId"], third["conversationCount"]) == (first["sessionId"], 3)
            assert third["storage"] == "redis"

            store.flushall()  # everything gone: the next message starts a new session
            fourth = await chat(http, "flush-ana", "Weather in Lima?")
            assert fourth["sessionId"] != first["sessionId"]
            assert (fourth["conversationCount"], fourth["storage"]) == (1, "redis")
            assert store.get(keys.user_active("flush-ana")) == fourth["sessionId"]
            assert (await status(http))["status"] == "ok"
