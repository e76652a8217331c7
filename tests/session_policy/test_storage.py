"""Storage on a Redis that answers but refuses: degraded with the reason, reads kept,
recovery probed with a write, cleanup failures counted and retried.

Each test runs its own embedded Redis servers and puts them in the state under test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest
import redis

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis, free_port
from session_policy.storage import StorageUnavailableError
from tests.session_policy.test_manager import Clock, Service, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
def pair() -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    with EmbeddedRedis() as first, EmbeddedRedis() as second:
        yield first, second


async def wait_for(condition: Callable[[], bool], timeout_s: float = 12) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls state set by another task
            await asyncio.sleep(0.05)


async def fail_over(primary: EmbeddedRedis, spare: EmbeddedRedis, probe_key: str) -> None:
    """`spare` takes over `primary`'s data and role; `primary` becomes its replica."""
    old, new = redis.Redis(port=primary.port), redis.Redis(port=spare.port)
    try:
        new.replicaof("127.0.0.1", primary.port)
        await wait_for(lambda: new.exists(probe_key) == 1)
        new.replicaof("NO", "ONE")
        old.replicaof("127.0.0.1", spare.port)
        await wait_for(lambda: old.info("replication")["master_link_status"] == "up")
    finally:
        old.close()
        new.close()


async def test_start_on_a_replica(pair: tuple[EmbeddedRedis, EmbeddedRedis]) -> None:
    primary, replica = pair
    replica_client = redis.Redis(port=replica.port)
    replica_client.replicaof("127.0.0.1", primary.port)
    svc = Service(settings_for(replica.url), Clock())
    await svc.storage.start()
    try:
        assert svc.storage.status == "degraded"  # it answers PING, but refuses writes
        assert svc.storage.problem_kind == "READONLY"
        assert svc.storage.reason is not None
        assert "READONLY" in svc.storage.reason
        assert svc.storage.readable() == [svc.storage.memory, svc.storage.redis]
        assert (await svc.chat("ro-amy", "Weather in Rome?")).storage == "memory"

        replica_client.replicaof("NO", "ONE")
        await wait_for(lambda: svc.storage.status == "ok")
        assert (await svc.chat("ro-bob", "Weather in Rome?")).storage == "redis"
        assert svc.storage.reason is None
    finally:
        replica_client.close()
        await svc.storage.close()


async def test_full_redis_needs_room_before_it_is_used_again(redis_url: str) -> None:
    svc = Service(settings_for(redis_url), Clock())
    await svc.storage.start()
    admin = redis.Redis.from_url(redis_url)
    try:
        assert (await svc.chat("oom-amy", "Weather in Rome?")).storage == "redis"
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", used + 1024)
        answers = [await svc.chat(f"oom-{i}", "Weather in Oslo?") for i in range(5)]
        assert answers[-1].storage == "memory"
        assert svc.storage.problem_kind == "OOM"
        # A small write may fit at the edge, but a turn would not: not back yet.
        admin.config_set("maxmemory", int(used / 0.96))
        assert admin.set("fits", "1")
        assert await svc.storage.probe() is False
        assert svc.storage.problem_kind == "OOM"
        admin.config_set("maxmemory", used * 4)
        assert await svc.storage.probe() is True
        assert (await svc.chat("oom-late", "hi")).storage == "redis"
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
        await svc.storage.close()


async def test_one_warning_per_change_of_state(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    svc = Service(settings_for(redis_url), Clock())
    await svc.storage.start()
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)  # every write refused, probes included
        with caplog.at_level(logging.WARNING, logger="session_policy.storage"):
            for i in range(5):
                assert (await svc.chat(f"warn-{i}", "hi")).storage == "memory"
            await asyncio.sleep(1)  # a few failed probes meanwhile
            assert svc.storage.unavailable(ValueError("a bug")) is False
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "OOM" in warnings[0]
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
        await svc.storage.close()


async def test_cleanup_on_a_replica_fails_counts_and_retries(
    pair: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    primary, spare = pair
    clock = Clock()
    svc = Service(settings_for(primary.url), clock)
    await svc.storage.start()
    try:
        turn = await svc.chat("sweep-amy", "Weather in Rome?")
        assert turn.storage == "redis"
        await fail_over(primary, spare, keys.thread(turn.session_id))
        clock.advance(30)  # past the inactivity timeout (20 s)

        assert await svc.cleanup.run_once() == []  # refused, not raised
        assert svc.cleanup.failed_runs == 1
        assert svc.cleanup.last_error is not None
        assert "READONLY" in svc.cleanup.last_error
        assert svc.storage.problem_kind == "READONLY"

        redis.Redis(port=primary.port).replicaof("NO", "ONE")
        await wait_for(lambda: svc.storage.status == "ok")
        ended = await svc.cleanup.run_once()  # the next run does the work
        assert [(r.sessionId, r.endReason) for r in ended] == [(turn.session_id, "inactivity")]
        assert svc.cleanup.failed_runs == 1
    finally:
        await svc.storage.close()


async def test_ending_a_session_on_a_replica_is_refused_clearly(
    pair: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    primary, spare = pair
    svc = Service(settings_for(primary.url), Clock())
    await svc.storage.start()
    try:
        turn = await svc.chat("end-amy", "Weather in Rome?")
        await fail_over(primary, spare, keys.thread(turn.session_id))
        # Reads still work on the replica: the session is listed...
        listed = await svc.manager.active_sessions("end-amy")
        assert [s.session_id for s in listed] == [turn.session_id]
        # ...but ending it needs a write: refused with the reason, not silently skipped.
        with pytest.raises(StorageUnavailableError, match="READONLY"):
            await svc.manager.end_user_sessions("end-amy")
    finally:
        await svc.storage.close()


async def test_a_cluster_none_of_whose_nodes_answers_is_unreachable() -> None:
    """Named by nodes that are all down: degraded because Redis is unreachable (not because
    "the probe failed"), and every message answered from memory."""
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    svc = Service(settings_for(url), Clock())
    await svc.storage.start()
    try:
        assert (svc.storage.status, svc.storage.problem_kind) == ("degraded", "unreachable")
        assert svc.storage.reason == "Redis is unreachable"
        assert (await svc.chat("nia", "Weather in Rome?")).storage == "memory"
    finally:
        await svc.storage.close()
