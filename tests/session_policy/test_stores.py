"""The session index contract, run against both stores (Redis and the memory fallback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from langgraph.checkpoint.memory import InMemorySaver

from session_policy import keys
from session_policy.memory_store import MemorySessionStore
from session_policy.models import SessionLimits
from session_policy.redis_store import RedisSessionStore
from session_policy.store import SessionStore

LIMITS = SessionLimits(duration_ms=60_000, inactivity_ms=20_000, max_conversations=5)
T0 = 1_900_000_000_000  # a fixed "now" in ms; TTLs land safely in the future
RETENTION_MS = 3_600_000


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore(InMemorySaver(), LIMITS, retention_ms=RETENTION_MS)
        return
    client = aioredis.Redis.from_url(redis_url)
    yield RedisSessionStore(client, LIMITS, retention_ms=RETENTION_MS)
    await client.aclose()


async def test_start_is_atomic(store: SessionStore) -> None:
    sessions = await asyncio.gather(*(store.get_or_start("alice", T0 + i) for i in range(20)))
    assert len({s.session_id for s in sessions}) == 1
    assert sessions[0].session_id.startswith("session:alice:")
    assert (await store.stats())["activeSessions"] == 1


async def test_new_session_fields(store: SessionStore) -> None:
    session = await store.get_or_start("bob", T0)
    assert session.session_id == f"session:bob:{T0}"
    assert (session.start_ms, session.last_activity_ms, session.conversation_count) == (T0, T0, 0)
    assert session.expires_at_ms == T0 + 60_000
    assert session.inactive_at_ms == T0 + 20_000
    assert session.ends_by == "inactivity"
    assert await store.active("bob") == session
    assert await store.get(session.session_id) == session


async def test_activity_moves_the_inactivity_deadline_but_never_the_duration(
    store: SessionStore,
) -> None:
    session = await store.get_or_start("carol", T0)
    updated = await store.record_turn(session, T0 + 50_000, 3)
    assert updated is not None
    assert updated.conversation_count == 3
    assert updated.last_activity_ms == T0 + 50_000
    assert updated.expires_at_ms == T0 + 60_000  # activity does not extend the session
    assert updated.inactive_at_ms == T0 + 60_000  # capped by the duration
    assert updated.ends_by == "duration"


async def test_end_once_keeps_a_record(store: SessionStore) -> None:
    session = await store.get_or_start("dave", T0)
    await store.record_turn(session, T0 + 1000, 2)
    ends = await asyncio.gather(
        *(store.end(session.session_id, "manual", T0 + 5000) for _ in range(10))
    )
    records = [r for r in ends if r is not None]
    assert len(records) == 1
    record = records[0]
    assert (record.sessionId, record.userId, record.endReason) == (
        session.session_id,
        "dave",
        "manual",
    )
    assert (record.startTime, record.endTime, record.conversationCount) == (T0, T0 + 5000, 2)
    assert record.duration == 5.0
    assert await store.active("dave") is None
    assert await store.get(session.session_id) is None
    assert await store.ended_record(session.session_id) == record
    assert await store.ended("dave", 10) == [record]
    assert await store.record_turn(session, T0 + 6000, 3) is None
    stats = await store.stats()
    assert stats["endedByReason"]["manual"] == 1
    assert stats["activeSessions"] == 0


async def test_next_session_gets_a_new_id_even_in_the_same_millisecond(
    store: SessionStore,
) -> None:
    first = await store.get_or_start("erin", T0)
    await store.end(first.session_id, "manual", T0)
    second = await store.get_or_start("erin", T0)
    assert second.session_id != first.session_id
    assert second.session_id == f"session:erin:{T0 + 1}"


async def test_sweep_ends_by_the_right_reason(store: SessionStore) -> None:
    idle = await store.get_or_start("idle", T0)
    busy = await store.get_or_start("busy", T0)
    fresh = await store.get_or_start("fresh", T0 + 50_000)
    await store.record_turn(busy, T0 + 15_000, 1)
    await store.record_turn(busy, T0 + 30_000, 2)
    await store.record_turn(busy, T0 + 45_000, 3)

    ended = await store.sweep(T0 + 21_000)
    assert [(r.sessionId, r.endReason) for r in ended] == [(idle.session_id, "inactivity")]
    assert await store.sweep(T0 + 21_000) == []  # exactly once

    ended = await store.sweep(T0 + 60_000)
    assert [(r.sessionId, r.endReason) for r in ended] == [(busy.session_id, "duration")]
    assert await store.active("fresh") == fresh
    stats = await store.stats()
    assert stats["endedByReason"]["inactivity"] == 1
    assert stats["endedByReason"]["duration"] == 1
    assert stats["activeSessions"] == 1


async def test_ids_never_match_by_prefix(store: SessionStore) -> None:
    one = await store.get_or_start("1", T0)
    twelve = await store.get_or_start("12", T0)
    await store.end(twelve.session_id, "manual", T0 + 1)
    assert await store.active("1") == one
    assert await store.ended("1", 10) == []
    assert [r.userId for r in await store.ended("12", 10)] == ["12"]


async def test_ended_history_newest_first_and_limited(store: SessionStore) -> None:
    for i in range(4):
        session = await store.get_or_start("frank", T0 + i * 10)
        await store.end(session.session_id, "manual", T0 + i * 10 + 5)
    history = await store.ended("frank", 3)
    assert [r.endTime for r in history] == [T0 + 35, T0 + 25, T0 + 15]


async def test_cleanup_statistics(store: SessionStore) -> None:
    await store.note_cleanup(T0, 1.5, 3)
    await store.note_cleanup(T0 + 1000, 0.5, 0)
    cleanup = (await store.stats())["cleanup"]
    assert cleanup["runs"] == 2
    assert cleanup["lastEnded"] == 0
    assert cleanup["lastDurationMs"] == 0.5
    assert cleanup["lastRun"].endswith("Z")


async def test_redis_keys_expire_by_themselves(redis_url: str) -> None:
    """The TTL backstop: every key of a session expires even if no server ever runs again."""
    client = aioredis.Redis.from_url(redis_url)
    store = RedisSessionStore(client, LIMITS, retention_ms=RETENTION_MS, grace_ms=60_000)
    session = await store.get_or_start("gina", T0)
    expected = T0 + 60_000 + 60_000
    assert await client.pexpiretime(keys.session_meta(session.session_id)) == expected
    assert await client.pexpiretime(keys.user_active("gina")) == expected
    await store.end(session.session_id, "manual", T0 + 10)
    [field_ttl] = await client.hpttl(keys.user_ended("gina"), session.session_id)
    assert 0 < field_ttl <= RETENTION_MS
    assert 0 < await client.pttl(keys.user_ended("gina")) <= RETENTION_MS
    # Nothing named after the ended session is left in Redis.
    assert [k async for k in client.scan_iter(match=f"*{session.session_id}*")] == []
    await client.aclose()


async def test_ended_record_expires_after_retention(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = RedisSessionStore(client, LIMITS, retention_ms=300)
    session = await store.get_or_start("hank", T0)
    await store.end(session.session_id, "manual", T0 + 10)
    assert await store.ended_record(session.session_id) is not None
    await asyncio.sleep(0.5)
    assert await store.ended_record(session.session_id) is None
    assert await store.ended("hank", 10) == []
    await client.aclose()


async def test_begin_turn_takes_the_lock_and_the_session_together(store: SessionStore) -> None:
    session = await store.begin_turn("gina", "token-1", 60_000, T0)
    assert session is not None
    assert session == await store.active("gina")
    # the lock is held: a second message of the same user gets nothing, and starts nothing
    assert await store.begin_turn("gina", "token-2", 60_000, T0 + 1) is None
    assert await store.try_lock("gina", "token-3", 60_000) is False
    assert (await store.stats())["activeSessions"] == 1
    # recording the conversation with the lock's token releases it in the same step
    recorded = await store.record_turn(session, T0 + 10, 1, unlock=("gina", "token-1"))
    assert recorded is not None
    assert recorded.conversation_count == 1
    again = await store.begin_turn("gina", "token-4", 60_000, T0 + 20)
    assert again is not None
    assert again.session_id == session.session_id


async def test_record_turn_unlocks_only_its_own_token(store: SessionStore) -> None:
    session = await store.begin_turn("hank", "mine", 60_000, T0)
    assert session is not None
    await store.record_turn(session, T0 + 10, 1, unlock=("hank", "not-mine"))
    assert await store.try_lock("hank", "other", 60_000) is False  # still held
    # a session that ended meanwhile still gets its lock released
    await store.end(session.session_id, "manual", T0 + 20)
    assert await store.record_turn(session, T0 + 30, 2, unlock=("hank", "mine")) is None
    assert await store.try_lock("hank", "other", 60_000) is True


async def test_racing_sweepers_end_each_session_once(redis_url: str) -> None:
    """Two processes' sweeps at once over sessions in every shard of the index."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    stores = [RedisSessionStore(c, LIMITS, retention_ms=RETENTION_MS) for c in clients]
    try:
        started = [await stores[0].get_or_start(f"racer-{i}", T0) for i in range(400)]
        assert len({keys.shard_of(s.user_id) for s in started}) == keys.SHARDS
        first, second = await asyncio.gather(*(s.sweep(T0 + 21_000) for s in stores))
        ended = [r.sessionId for r in first + second]
        assert sorted(ended) == sorted(s.session_id for s in started)  # all, none twice
        stats = await stores[1].stats()
        assert (stats["activeSessions"], stats["endedByReason"]["inactivity"]) == (0, 400)
    finally:
        for client in clients:
            await client.aclose()


async def test_the_index_follows_the_session(redis_url: str) -> None:
    """A turn moves the session's index entry to its new deadline; an entry whose session's
    keys expired by TTL is dropped by the next sweep."""
    client = aioredis.Redis.from_url(redis_url)
    store = RedisSessionStore(client, LIMITS, retention_ms=RETENTION_MS)
    try:
        kept = await store.get_or_start("index-kept", T0)
        index = keys.deadlines(keys.shard_of("index-kept"))
        assert await client.zscore(index, kept.session_id) == T0 + 20_000
        await store.record_turn(kept, T0 + 15_000, 1)
        assert await client.zscore(index, kept.session_id) == T0 + 35_000
        gone = await store.get_or_start("index-gone", T0)
        await client.delete(keys.session_meta(gone.session_id))  # as its TTL would
        assert await store.sweep(T0 + 21_000) == []
        gone_index = keys.deadlines(keys.shard_of("index-gone"))
        assert await client.zscore(gone_index, gone.session_id) is None
        [record] = await store.sweep(T0 + 35_000)
        assert (record.sessionId, record.endReason) == (kept.session_id, "inactivity")
        assert await store.active_count() == 0
    finally:
        await client.aclose()


# --- the turn queue (DOUBLE_TEXTING=enqueue) -------------------------------------------------

PLACE_MS = 5_000


async def test_queued_turns_get_the_lock_in_arrival_order(store: SessionStore) -> None:
    assert await store.try_lock("queue", "running", 60_000, queue_ms=PLACE_MS)
    waiters = [f"w{i}" for i in range(5)]
    for waiter in waiters:  # they arrive in this order while a turn runs
        assert not await store.try_lock("queue", waiter, 60_000, queue_ms=PLACE_MS)
    await store.unlock("queue", "running")
    served = []
    while waiters:
        # Whoever asks first, only the earliest arrival gets the lock.
        got = [
            w
            for w in reversed(waiters)
            if await store.try_lock("queue", w, 60_000, queue_ms=PLACE_MS)
        ]
        assert len(got) == 1
        served += got
        waiters.remove(got[0])
        assert not await store.try_lock("queue", "late", 60_000, queue_ms=0)  # reject mode
        await store.unlock("queue", got[0])
    assert served == [f"w{i}" for i in range(5)]
    # The queue is empty again: the next message gets the free lock at once.
    assert await store.try_lock("queue", "next", 60_000, queue_ms=PLACE_MS)


async def test_a_newcomer_waits_behind_the_queue_even_when_the_lock_is_free(
    store: SessionStore,
) -> None:
    assert await store.try_lock("fair", "running", 60_000, queue_ms=PLACE_MS)
    assert not await store.try_lock("fair", "first", 60_000, queue_ms=PLACE_MS)
    await store.unlock("fair", "running")
    # Between the unlock and the first waiter's next poll, a new message does not jump in.
    assert not await store.try_lock("fair", "newcomer", 60_000, queue_ms=PLACE_MS)
    assert await store.try_lock("fair", "first", 60_000, queue_ms=PLACE_MS)


async def test_begin_turn_in_the_queue_starts_the_session_for_the_first_waiter(
    store: SessionStore,
) -> None:
    running = await store.begin_turn("ivy", "t1", 60_000, T0, queue_ms=PLACE_MS)
    assert running is not None
    assert await store.begin_turn("ivy", "t2", 60_000, T0 + 1, queue_ms=PLACE_MS) is None
    assert await store.begin_turn("ivy", "t3", 60_000, T0 + 2, queue_ms=PLACE_MS) is None
    await store.record_turn(running, T0 + 5, 1, unlock=("ivy", "t1"))
    assert await store.begin_turn("ivy", "t3", 60_000, T0 + 6, queue_ms=PLACE_MS) is None
    second = await store.begin_turn("ivy", "t2", 60_000, T0 + 7, queue_ms=PLACE_MS)
    assert second is not None
    assert (second.session_id, second.conversation_count) == (running.session_id, 1)


async def test_a_waiter_that_stops_asking_drops_out_of_the_queue(store: SessionStore) -> None:
    """Its process died: after its place's time, the next waiter is served."""
    assert await store.try_lock("gone", "running", 60_000, queue_ms=PLACE_MS)
    assert not await store.try_lock("gone", "dead", 60_000, queue_ms=300)
    assert not await store.try_lock("gone", "alive", 60_000, queue_ms=PLACE_MS)
    await store.unlock("gone", "running")
    assert not await store.try_lock("gone", "alive", 60_000, queue_ms=PLACE_MS)  # dead is first
    for _ in range(100):  # up to 5 s; "dead" never asks again
        if await store.try_lock("gone", "alive", 60_000, queue_ms=PLACE_MS):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the dead waiter's place never expired")


async def test_leaving_the_queue_lets_the_next_waiter_in(store: SessionStore) -> None:
    assert await store.try_lock("quit", "running", 60_000, queue_ms=PLACE_MS)
    assert not await store.try_lock("quit", "impatient", 60_000, queue_ms=PLACE_MS)
    assert not await store.try_lock("quit", "patient", 60_000, queue_ms=PLACE_MS)
    await store.leave_queue("quit", "impatient")
    await store.unlock("quit", "running")
    assert await store.try_lock("quit", "patient", 60_000, queue_ms=PLACE_MS)


async def test_the_queue_leaves_nothing_behind(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = RedisSessionStore(client, LIMITS, retention_ms=RETENTION_MS)
    assert await store.try_lock("tidy", "running", 60_000, queue_ms=PLACE_MS)
    assert not await store.try_lock("tidy", "waiter", 60_000, queue_ms=PLACE_MS)
    await store.unlock("tidy", "running")
    assert await store.try_lock("tidy", "waiter", 60_000, queue_ms=PLACE_MS)
    # Only the ticket counter is left, and it expires with the last waiter's place.
    queue = keys.user_queue("tidy")
    assert await client.hkeys(queue) == [keys.QUEUE_NEXT.encode()]
    assert 0 < await client.pttl(queue) <= PLACE_MS
    await client.aclose()
