"""A Redis Cluster losing a primary, and moving slots, while a server process serves it.

Failover: `kill -9` of a primary under load; its replica takes over. No answer is a 5xx
(turns that met the dead primary are answered from memory, `degraded`, for a moment); every
answered turn is in its session's history or its ended record's count; `/system/status` is
`ok` again. Resharding: the slots holding live sessions move to another primary, key by key,
while the users talk (MOVED, ASK, TRYAGAIN on the way); no 5xx, and every session continues
with its counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import redis
from redis.crc import key_slot

from session_policy import keys
from session_policy.embedded_cluster import EmbeddedCluster
from tests.reliability.helpers import JSON, client, get_json, wait_until
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

USERS = 24
ENV = {
    "RATE_LIMIT_PER_MINUTE": "0",
    "MAX_CONVERSATIONS_PER_SESSION": "1000",
    "INACTIVITY_TIMEOUT": "600",
    "CLEANUP_INTERVAL": "500",
    "REDIS_TIMEOUT": "1",
}


@pytest.fixture(scope="module")
def cluster_server(redis_cluster: EmbeddedCluster) -> Iterator[ServerProcess]:
    for port in redis_cluster.primary_ports():
        with redis.Redis(port=port) as node:
            node.flushall()
    server = ServerProcess(redis_cluster.url, **ENV).start()
    yield server
    server.stop()


@dataclass
class Load:
    """Users sending one message after another until stopped; every answer kept."""

    http: httpx.AsyncClient
    prefix: str
    answers: dict[str, list[JSON]] = field(default_factory=lambda: defaultdict(list))
    statuses: list[int] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def user(self, user: str) -> None:
        turn = 0
        while not self.stop.is_set():
            turn += 1
            message = f"Weather in Rome? (turn {turn})"
            response = await self.http.post("/chat", json={"userId": user, "message": message})
            self.statuses.append(response.status_code)
            if response.status_code != 200:
                self.refusals.append(f"{user} turn {turn}: {response.status_code} {response.text}")
            if response.status_code == 200:
                self.answers[user].append(response.json())
            await asyncio.sleep(0.02)

    def run(self) -> asyncio.Future[list[None]]:
        users = [f"{self.prefix}-{i:02d}" for i in range(USERS)]
        return asyncio.gather(*(self.user(u) for u in users))


async def check_every_answer_is_kept(load: Load) -> None:
    """Each session's answered turns count 1, 2, 3... and the session (active: its history;
    ended: its record) holds at least as many conversations as were answered."""
    for user, answers in load.answers.items():
        by_session: dict[str, list[int]] = defaultdict(list)
        for answer in answers:
            by_session[answer["sessionId"]].append(answer["conversationCount"])
        for session_id, counts in by_session.items():
            assert counts == list(range(1, len(counts) + 1)), (user, session_id, counts)
            kept = await get_json(load.http, f"/sessions/{user}/history/{session_id}")
            held = (
                kept["count"] if kept["status"] == "active" else kept["record"]["conversationCount"]
            )
            assert held >= counts[-1], (user, session_id, counts, kept["status"], held)


async def status_ok(http: httpx.AsyncClient) -> bool:
    status = await get_json(http, "/system/status")
    return bool(status["status"] == "ok")


async def test_failover_of_a_primary_under_load(
    cluster_server: ServerProcess, redis_cluster: EmbeddedCluster
) -> None:
    victim = redis_cluster.owner(key_slot(keys.deadlines(keys.shard_of("fo-00")).encode()))
    async with client(cluster_server.url) as http:
        load = Load(http, "fo")
        running = load.run()
        await asyncio.sleep(1.5)
        before = sum(len(a) for a in load.answers.values())
        killed_at = time.monotonic()
        victim.kill()
        await wait_until(lambda: asyncio.sleep(0, not redis_cluster.healthy()), 1, "a failure")
        promoted_s = await wait_until(
            lambda: asyncio.sleep(0, redis_cluster.healthy()), 30, "the replica promoted", 0.1
        )
        ok_s = await wait_until(lambda: status_ok(http), 30, "status ok again", 0.1)
        ok_after_kill = time.monotonic() - killed_at
        await asyncio.sleep(1.5)  # and serving on the new primary
        load.stop.set()
        await running
        await check_every_answer_is_kept(load)
    turns = sum(len(a) for a in load.answers.values())
    degraded = sum(1 for a in load.answers.values() for x in a if x["storage"] == "memory")
    errors = [s for s in load.statuses if s >= 500]
    print(
        f"\n[cluster failover] {turns} turns answered ({before} before the kill), "
        f"{len(errors)} 5xx, {len(load.refusals)} other refusals, {degraded} answered from "
        "memory; replica promoted "
        f"{promoted_s:.1f} s after the failure was seen, status ok {ok_after_kill:.1f} s "
        f"after the kill (ok {ok_s:.1f} s after the promotion)"
    )
    assert victim.port not in redis_cluster.primary_ports()
    assert len(redis_cluster.primary_ports()) == 3
    assert errors == []
    # Nor a 409: a turn lock left on the failed primary is released once the cluster is back.
    assert set(load.statuses) == {200}, load.refusals[:5]
    assert turns > before
    # The killed node comes back as a replica of the one that took its place.
    victim.start()
    await wait_until(lambda: asyncio.sleep(0, redis_cluster.healthy()), 30, "node rejoined")
    primaries = {f"127.0.0.1:{port}" for port in redis_cluster.primary_ports()}
    expected = {
        f"127.0.0.1:{node.port}": "primary" if f"127.0.0.1:{node.port}" in primaries else "replica"
        for node in redis_cluster.nodes
    }

    # /system/memory shows the cluster as it is now: the rejoined node, as a replica.
    async with client(cluster_server.url) as after:

        async def nodes_as_the_cluster_has_them() -> bool:
            memory = await get_json(after, "/system/memory")
            return {row["node"]: row["role"] for row in memory["redis"]["nodes"]} == expected

        await wait_until(nodes_as_the_cluster_has_them, 10, "the rejoined node in the report")


async def test_resharding_while_serving(
    cluster_server: ServerProcess, redis_cluster: EmbeddedCluster
) -> None:
    users = [f"rs-{i:02d}" for i in range(USERS)]
    slots = sorted({key_slot(keys.deadlines(keys.shard_of(u)).encode()) for u in users})
    async with client(cluster_server.url) as http:
        load = Load(http, "rs")
        running = load.run()
        await asyncio.sleep(1.0)
        moved = 0
        started = time.monotonic()
        for slot in slots:  # each to the next primary
            ports = redis_cluster.primary_ports()
            source = redis_cluster.owner(slot)
            target = redis_cluster.node_at(ports[(ports.index(source.port) + 1) % len(ports)])
            moved += await asyncio.to_thread(redis_cluster.move_slot, slot, target, pause_s=0.01)
        reshard_s = time.monotonic() - started
        await asyncio.sleep(1.0)
        load.stop.set()
        await running
        await check_every_answer_is_kept(load)
        status = await get_json(http, "/system/status")
    turns = sum(len(a) for a in load.answers.values())
    sessions = {a["sessionId"] for answers in load.answers.values() for a in answers}
    storages = {a["storage"] for answers in load.answers.values() for a in answers}
    print(
        f"\n[cluster resharding] {len(slots)} slots ({moved} keys) moved in {reshard_s:.1f} s "
        f"while serving; {turns} turns answered, {len(sessions)} sessions for {USERS} users, "
        f"statuses {sorted(set(load.statuses))}"
    )
    assert set(load.statuses) == {200}
    assert storages == {"redis"}  # never fell back to memory
    assert len(sessions) == USERS  # each user's session continued, its counts unbroken
    assert status["status"] == "ok"
    assert moved > 0
