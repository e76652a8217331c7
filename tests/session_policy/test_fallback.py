"""Redis failing and coming back: every message answered, sessions follow the storage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.session_policy.test_manager import Clock, Service, settings_for


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, to stop and start."""
    with EmbeddedRedis() as server:
        yield server


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds; fails after 10 s (the reconnect promise)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - polls state set by another task
            await asyncio.sleep(0.05)


async def wait_for_async(read: Callable[[], Awaitable[object]], expected: object) -> None:
    """Poll until `await read()` equals `expected`; fails after 10 s."""
    async with asyncio.timeout(10):
        while await read() != expected:  # noqa: ASYNC110 - polls Redis
            await asyncio.sleep(0.05)


async def test_redis_down_mid_conversation_then_back(own_redis: EmbeddedRedis) -> None:
    svc = Service(settings_for(own_redis.url, max_conversations_per_session=10), Clock())
    await svc.storage.start()
    first = await svc.chat("gus", "Weather in Rome?")
    assert (first.storage, svc.storage.status) == ("redis", "ok")

    own_redis.stop()
    svc.clock.advance(1)
    during = [await svc.chat("gus", text) for text in ("Weather in Oslo?", "what about Paris?")]
    assert all(turn.storage == "memory" for turn in during)
    assert svc.storage.status == "degraded"
    assert during[0].session_id == during[1].session_id != first.session_id
    assert during[1].conversation_count == 2
    assert "Paris" in during[1].response  # the memory session has its own conversation
    assert (await svc.chat("newcomer", "hi")).storage == "memory"

    own_redis.start()  # back, empty
    await wait_for(lambda: svc.storage.status == "ok")
    # gus's memory session continues where it started; new sessions go to Redis.
    assert (await svc.chat("gus", "thanks")).storage == "memory"
    assert (await svc.chat("someone-else", "hi")).storage == "redis"
    await svc.manager.end_user_sessions("gus")
    assert (await svc.chat("gus", "hi")).storage == "redis"
    await svc.storage.close()


async def test_redis_down_at_start_up(own_redis: EmbeddedRedis) -> None:
    own_redis.stop()
    svc = Service(settings_for(own_redis.url), Clock())
    await svc.storage.start()
    assert svc.storage.status == "degraded"
    assert (await svc.chat("hal", "Weather in Rome?")).storage == "memory"
    own_redis.start()
    await wait_for(lambda: svc.storage.status == "ok")
    assert (await svc.chat("ivy", "hi")).storage == "redis"
    await svc.storage.close()


async def test_redis_restarted_empty(own_redis: EmbeddedRedis) -> None:
    svc = Service(settings_for(own_redis.url), Clock())
    await svc.storage.start()
    before = await svc.chat("jay", "Weather in Rome?")
    own_redis.stop()
    own_redis.start()
    svc.clock.advance(1)
    after = await svc.chat("jay", "and tomorrow?")  # the session is gone with the data
    assert after.session_id != before.session_id
    assert after.conversation_count == 1
    await svc.storage.close()


async def test_shutdown_ends_memory_sessions(own_redis: EmbeddedRedis) -> None:
    own_redis.stop()
    svc = Service(settings_for(own_redis.url), Clock())
    await svc.storage.start()
    turn = await svc.chat("kim", "hi")
    assert await svc.manager.shutdown() == [turn.session_id]
    record = await svc.storage.memory.sessions.ended_record(turn.session_id)
    assert record is not None
    assert record.endReason == "shutdown"
    await svc.storage.close()


@pytest.mark.parametrize("end_on_shutdown", [False, True])
async def test_redis_sessions_survive_a_restart_unless_told(
    redis_url: str, end_on_shutdown: bool
) -> None:
    clock = Clock()
    svc = Service(settings_for(redis_url), clock)
    svc.manager.end_sessions_on_shutdown = end_on_shutdown
    await svc.storage.start()
    turn = await svc.chat("lee", "Weather in Rome?")
    untouched = await svc.storage.current.sessions.get_or_start("other-user", clock())
    await svc.manager.shutdown()
    await svc.storage.close()

    restarted = Service(settings_for(redis_url), clock)
    await restarted.storage.start()
    again = await restarted.chat("lee", "and tomorrow?")
    assert (again.session_id == turn.session_id) is (not end_on_shutdown)
    # Only what this process served is ended: never every user's sessions.
    assert await restarted.storage.current.sessions.active("other-user") == untouched
    await restarted.storage.close()


class FailingFirst:
    """`real`, failing its first `left` calls as a primary failing over does."""

    def __init__(self, left: int, real: Callable[..., Awaitable[Any]]) -> None:
        self.left, self.real = left, real

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.left:
            self.left -= 1
            raise redis.ConnectionError("primary failing over")
        return await self.real(*args, **kwargs)


async def test_a_turn_whose_record_failed_is_recorded_when_redis_answers(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis fails after the turn is saved in its thread, when the turn is recorded (which
    also releases the turn lock): it is recorded once Redis answers again, so the count is
    not lost (the next turn would count the same conversation again) and the lock is not
    left to lock the user out (409 or a wait) until it expires."""
    svc = Service(settings_for(redis_url), Clock())
    await svc.storage.start()
    store, client = svc.storage.redis_store, svc.storage.client
    assert store is not None
    assert client is not None
    record_turn = FailingFirst(3, store.record_turn)
    monkeypatch.setattr(store, "record_turn", record_turn)
    turn = await svc.chat("mo", "Weather in Rome?")
    assert (turn.storage, turn.conversation_count, turn.session_status) == ("redis", 1, "active")
    lock = keys.user_lock("mo")
    assert await client.exists(lock) == 1  # held until the record is made
    await wait_for_async(lambda: client.exists(lock), 0)
    assert record_turn.left == 0
    await wait_for(lambda: svc.storage.status == "ok")
    again = await svc.chat("mo", "and tomorrow?")  # not refused as busy
    assert (again.storage, again.session_id) == ("redis", turn.session_id)
    assert again.conversation_count == 2
    await svc.storage.close()


async def test_a_turn_lock_left_by_a_failure_is_released_when_redis_answers(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis fails during the turn (answered again from memory), and again when its Redis
    turn lock is released: the lock is released once Redis answers."""
    svc = Service(settings_for(redis_url), Clock())
    await svc.storage.start()
    redis_backing, store, client = svc.storage.redis, svc.storage.redis_store, svc.storage.client
    assert redis_backing is not None
    assert store is not None
    assert client is not None
    saver = redis_backing.checkpointer
    monkeypatch.setattr(saver, "aput", FailingFirst(1, saver.aput))
    unlock = FailingFirst(3, store.unlock)
    monkeypatch.setattr(store, "unlock", unlock)
    turn = await svc.chat("mo", "Weather in Rome?")
    assert turn.storage == "memory"
    lock = keys.user_lock("mo")
    assert await client.exists(lock) == 1
    await wait_for_async(lambda: client.exists(lock), 0)
    assert unlock.left == 0
    await svc.storage.close()
