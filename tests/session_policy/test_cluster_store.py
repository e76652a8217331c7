"""Sessions on a Redis Cluster (3 primaries, a replica each) as on one Redis: every end
reason (the time limits in `test_manager`, which runs them on both), history and ended
records, thread keys gone at the end, turn locks, user facts, cleanup over every shard,
statistics; and the cluster's own cases (scripts lost by the nodes, keys of one script in
one slot, the sessions spread over the primaries).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from session_policy import keys
from session_policy.embedded_cluster import EmbeddedCluster
from session_policy.redis_client import make_client, node_infos
from tests.session_policy.test_manager import Clock, Service, settings_for, thread_keys

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(cluster_url: str) -> AsyncIterator[Service]:
    svc = Service(settings_for(cluster_url), Clock())
    await svc.storage.start()
    assert svc.storage.status == "ok", svc.storage.reason
    yield svc
    await svc.storage.close()


def cluster_client(service: Service) -> aioredis.RedisCluster:
    client = service.storage.client
    assert isinstance(client, aioredis.RedisCluster)
    return client


def test_the_embedded_cluster_has_three_primaries_with_a_replica_each(
    redis_cluster: EmbeddedCluster,
) -> None:
    assert redis_cluster.healthy()
    primaries = redis_cluster.primary_ports()
    assert len(primaries) == 3
    for node in redis_cluster.nodes:
        client = redis.Redis(port=node.port, decode_responses=True)
        info = client.cluster("info")
        role = client.info("replication")["role"]
        client.close()
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_assigned"] == "16384"
        assert info["cluster_known_nodes"] == "6"
        assert role == ("master" if node.port in primaries else "slave")


async def test_conversation_limit_ends_the_session_and_deletes_its_thread(
    service: Service,
) -> None:
    first = [await service.chat("alice", t) for t in ("I'm Alice", "Weather in Rome?", "thanks")]
    assert [r.conversation_count for r in first] == [1, 2, 3]
    assert {r.session_id for r in first} == {first[0].session_id}
    assert (first[-1].session_status, first[-1].end_reason) == ("ended", "conversation_limit")
    assert {r.storage for r in first} == {"redis"}
    assert await thread_keys(cluster_client(service), first[0].session_id) == []
    sessions = service.storage.current.sessions
    record = await sessions.ended_record(first[0].session_id)
    assert record is not None
    assert (record.endReason, record.conversationCount) == ("conversation_limit", 3)
    nxt = await service.chat("alice", "what's my name?")
    assert nxt.session_id != first[0].session_id
    assert (nxt.conversation_count, nxt.response) == (1, "Your name is Alice.")  # user facts
    history = await service.manager.ended_sessions("alice", 10)
    assert [r.sessionId for r in history] == [first[0].session_id]


async def test_manual_end(service: Service) -> None:
    turn = await service.chat("carol", "Weather in Lima?")
    assert await service.manager.end_user_sessions("carol") == [turn.session_id]
    assert await thread_keys(cluster_client(service), turn.session_id) == []
    assert await service.manager.end_user_sessions("carol") == []
    record = await service.storage.current.sessions.ended_record(turn.session_id)
    assert record is not None
    assert (record.endReason, record.conversationCount) == ("manual", 1)


async def test_cleanup_walks_every_shard_on_every_primary(service: Service) -> None:
    users = [f"sweep-{i}" for i in range(120)]
    assert {keys.shard_of(u) for u in users} == set(range(keys.SHARDS))  # every shard
    sessions = [
        await service.storage.current.sessions.get_or_start(u, service.clock()) for u in users
    ]
    client = cluster_client(service)
    per_primary = {}
    for primary in client.get_primaries():
        found = client.scan_iter(match=f"{keys.PREFIX}:*:meta", target_nodes=primary)
        per_primary[primary.name] = len([k async for k in found])
    assert sum(per_primary.values()) == len(users)
    assert len(per_primary) == 3
    assert min(per_primary.values()) > 0, per_primary

    service.clock.advance(21)
    ended = await service.cleanup.run_once()
    assert sorted(r.sessionId for r in ended) == sorted(s.session_id for s in sessions)
    assert {r.endReason for r in ended} == {"inactivity"}
    assert await service.cleanup.run_once() == []  # each session ends once
    stats = await service.storage.current.sessions.stats()
    assert stats["activeSessions"] == 0
    assert stats["endedByReason"]["inactivity"] == len(users)
    assert stats["cleanup"]["runs"] == 2
    assert [k async for k in client.scan_iter(match=f"{keys.PREFIX}:*:meta")] == []


async def test_turn_locks(service: Service) -> None:
    sessions = service.storage.current.sessions
    now = service.clock()
    first = await sessions.begin_turn("dora", "t1", 5000, now)
    assert first is not None
    assert await sessions.begin_turn("dora", "t2", 5000, now) is None  # the turn runs
    assert not await sessions.try_lock("dora", "t2", 5000)
    await sessions.unlock("dora", "t1")
    again = await sessions.begin_turn("dora", "t2", 5000, now)
    assert again is not None
    assert again.session_id == first.session_id


async def test_scripts_lost_by_the_nodes_are_loaded_again(
    service: Service, redis_cluster: EmbeddedCluster
) -> None:
    turn = await service.chat("eve", "Weather in Rome?")
    for node in redis_cluster.running_nodes():  # as after a restart or a failover
        plain = redis.Redis(port=node.port)
        plain.script_flush()
        plain.close()
    again = await service.chat("eve", "and tomorrow?")
    assert (again.session_id, again.conversation_count) == (turn.session_id, 2)
    service.clock.advance(21)
    [record] = await service.cleanup.run_once()
    assert (record.sessionId, record.conversationCount) == (turn.session_id, 2)


async def test_status_figures_come_from_every_primary(service: Service) -> None:
    await service.chat("fay", "Weather in Rome?")
    rows = await node_infos(cluster_client(service), "memory")
    assert [row.role for row in rows] == ["primary"] * 3 + ["replica"] * 3
    assert all(int(row.info["used_memory"]) > 0 for row in rows)
    stats = await service.storage.current.sessions.stats()
    assert stats["activeSessions"] == 1
    assert await service.storage.probe()
    # The probe wrote a key in every shard, so every primary was checked.
    probes = [await cluster_client(service).exists(keys.shard_probe(s)) for s in range(keys.SHARDS)]
    assert probes == [1] * keys.SHARDS


async def test_a_script_refuses_a_key_it_did_not_declare(service: Service) -> None:
    """The guard behind migration safety: a key reached by name must be in KEYS."""
    store = service.storage.redis_store
    assert store is not None
    turn = await service.chat("gus", "Weather in Rome?")
    shard_keys, head = store._shard(keys.shard_of("gus"))  # the index only: no session keys
    with pytest.raises(redis.ResponseError, match="undeclared key"):
        await store._end(keys=shard_keys, args=[*head, turn.session_id, 1, 1000, "manual"])
    assert await service.storage.current.sessions.get(turn.session_id) is not None


async def test_a_tryagain_that_outlasts_redis_py_is_retried_with_backoff(
    cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py gives up on a slot being moved after about 0.4 s (`ClusterError: TTL
    exhausted`); the client tries again with backoff before Redis counts as unavailable."""
    client = make_client(cluster_url, 1)
    real = aioredis.RedisCluster._execute_command
    exhausted = 2

    async def slot_still_moving(self: aioredis.RedisCluster, *args: Any, **kwargs: Any) -> Any:
        nonlocal exhausted
        if args[1] == "SET" and exhausted:
            exhausted -= 1
            raise redis.exceptions.ClusterError("TTL exhausted.")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(aioredis.RedisCluster, "_execute_command", slot_still_moving)
    try:
        assert await client.set("wa:test:moving", "1", px=10_000)
        assert exhausted == 0
    finally:
        await client.aclose()
