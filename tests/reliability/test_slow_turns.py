"""A slow or busy server never costs the user a turn or a session (found by the HTTP tests).

1. Cleanup never ends a session while one of its turns runs. A turn that started just before
   the session's inactivity or duration deadline used to be cut: another sweep ended the
   session mid-turn, the turn's writes were refused, and the user got an answer whose
   conversation was in neither the session's history nor its ended record (the first turn
   of a cold server, ~6 s, lost that way in the multi-process test). Now a sweep skips the
   session while its user's turn lock is held, and the first sweep after the turn ends it
   with the turn counted.
2. Inactivity is judged at the message's arrival: a message sent 0.3 s after the previous
   answer used to find its session "inactive" because the busy process reached the policy
   gate 1.8 s later (INACTIVITY_TIMEOUT=2 in the multi-process test).
3. The thread is not deleted by its TTL under a turn that arrived before the hard deadline.
"""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from langgraph.checkpoint.memory import InMemorySaver

from session_policy import keys
from session_policy.memory_store import MemorySessionStore
from session_policy.models import SessionLimits
from session_policy.policy import SessionContext, SessionPolicy, SessionState
from session_policy.redis_store import RedisSessionStore
from session_policy.store import SessionStore
from tests.session_policy.test_manager import Clock, Service, settings_for

pytestmark = pytest.mark.integration

LIMITS = SessionLimits(duration_ms=10_000, inactivity_ms=2_000, max_conversations=5)


async def sweep_skips_a_running_turn(store: SessionStore) -> None:
    t0 = int(time.time() * 1000)  # now: Redis expires the keys by the wall clock
    session = await store.get_or_start("slow", t0)
    assert await store.try_lock("slow", "turn-1", 120_000)
    # The turn takes longer than the inactivity timeout: sweeps meanwhile leave it alone.
    assert await store.sweep(t0 + 2_500) == []
    assert await store.sweep(t0 + 3_000) == []
    assert await store.active("slow") == session
    recorded = await store.record_turn(session, t0 + 3_100, 1)
    assert recorded is not None
    await store.unlock("slow", "turn-1")
    assert await store.sweep(t0 + 4_000) == []  # the turn was activity: 2 s from its end
    [record] = await store.sweep(t0 + 5_100)
    assert (record.sessionId, record.conversationCount, record.endReason) == (
        session.session_id, 1, "inactivity",
    )  # fmt: skip

    # Past the hard deadline too: the session ends by duration once the turn is over.
    late = await store.get_or_start("late", t0 + 6_000)
    assert await store.try_lock("late", "turn-2", 120_000)
    assert await store.sweep(t0 + 16_500) == []
    await store.record_turn(late, t0 + 16_600, 1)
    await store.unlock("late", "turn-2")
    [record] = await store.sweep(t0 + 16_700)
    assert (record.conversationCount, record.endReason) == (1, "duration")


async def test_redis_sweep_waits_for_the_running_turn(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        store = RedisSessionStore(client, LIMITS, retention_ms=3_600_000)
        await sweep_skips_a_running_turn(store)
        assert await store.active_count() == 0
    finally:
        await client.aclose()


async def test_memory_sweep_waits_for_the_running_turn() -> None:
    store = MemorySessionStore(InMemorySaver(), LIMITS, retention_ms=3_600_000)
    await sweep_skips_a_running_turn(store)


def test_gate_judges_inactivity_at_the_message_arrival() -> None:
    t0 = 1_800_000_000_000
    policy = SessionPolicy(LIMITS, clock_ms=lambda: t0 + 2_500)  # the gate runs 2.5 s later
    session = SessionState(
        session_id="session:busy:1", user_id="busy", started_at=t0, last_activity=t0,
        conversation_count=1, status="active", end_reason=None, answered=True,
    )  # fmt: skip
    arrived_in_time = SessionContext(received_at_ms=t0 + 1_500)
    update = policy.gate_update({"session": session}, {}, arrived_in_time)
    assert update["session"]["status"] == "active"
    arrived_late = SessionContext(received_at_ms=t0 + 2_100)
    update = policy.gate_update({"session": session}, {}, arrived_late)
    assert (update["session"]["status"], update["session"]["end_reason"]) == ("ended", "inactivity")
    # Without the manager's arrival time (e.g. `langgraph dev`), the gate's own clock decides.
    update = policy.gate_update({"session": session}, {}, SessionContext())
    assert update["session"]["end_reason"] == "inactivity"


async def test_thread_outlives_the_hard_deadline_with_the_session(redis_url: str) -> None:
    """3. The thread's TTL backstop is the session's (deadline + grace), not the deadline.

    A message that arrived 10 ms before the hard deadline (soak test) found the thread
    expired by its TTL when the graph read it: the graph started the conversation over and
    the ended record said 1 conversation instead of 4.
    """
    svc = Service(settings_for(redis_url, session_duration=60), Clock())
    await svc.storage.start()
    try:
        turn = await svc.chat("kept", "Weather in Rome?")
        redis_backing = svc.storage.redis
        assert redis_backing is not None
        assert svc.storage.client is not None
        session = await redis_backing.sessions.get(turn.session_id)
        assert session is not None
        client = svc.storage.client
        meta_expiry = await client.pexpiretime(keys.session_meta(turn.session_id))
        assert await client.pexpiretime(keys.thread(turn.session_id)) == meta_expiry
        assert meta_expiry >= session.expires_at_ms + 60_000  # the grace
    finally:
        await svc.storage.close()
