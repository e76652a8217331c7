"""Sessions end to end on a real Redis: every end reason, deletion, records, facts, memory.

A fake clock (starting at the real time, moved by the tests) stands in for waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig

from agent import build_graph
from agent.facts import extract_facts
from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather
from session_policy import keys
from session_policy.cleanup import Cleanup
from session_policy.config import SessionSettings
from session_policy.manager import SessionBusyError, SessionManager, TurnResult
from session_policy.models import SessionLimits
from session_policy.policy import SessionPolicy
from session_policy.redis_client import RedisClient
from session_policy.storage import Backing, Storage


class Clock:
    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


class Service:
    """A session manager wired like the server's, with short limits."""

    def __init__(self, settings: SessionSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.storage = Storage(settings, settings.redis_url)
        policy = SessionPolicy(
            SessionLimits.from_settings(settings),
            clock_ms=clock,
            extract_facts=extract_facts,
            facts_ttl_s=settings.user_memory_ttl,
        )
        model = OfflineChatModel()
        weather = SimulatedWeather()

        def graph_for(backing: Backing) -> Any:
            return build_graph(
                backing.checkpointer,
                store=backing.facts,
                model=model,
                weather=weather,
                policy=policy,
            )

        self.manager = SessionManager(
            self.storage, graph_for, clock_ms=clock, queue_s=settings.turn_queue_seconds
        )
        self.cleanup = Cleanup(self.storage, settings.cleanup_interval_seconds, clock_ms=clock)

    async def chat(self, user: str, text: str) -> TurnResult:
        return await self.manager.chat(user, text)


def settings_for(redis_url: str | None, **overrides: Any) -> SessionSettings:
    values: dict[str, Any] = {
        "session_duration": 60,
        "inactivity_timeout": 20,
        "max_conversations_per_session": 3,
        "cleanup_interval": 1000,
        "session_history_retention": 3600,
        "redis_url": redis_url,
    }
    return SessionSettings(**{**values, **overrides})


@pytest.fixture
async def service(redis_url: str) -> AsyncIterator[Service]:
    svc = Service(settings_for(redis_url), Clock())
    await svc.storage.start()
    yield svc
    await svc.storage.close()


async def thread_keys(client: RedisClient, session_id: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"*{session_id}*")]


async def test_conversation_limit_then_a_new_session(service: Service) -> None:
    first = [await service.chat("alice", text) for text in ("hi", "Weather in Rome?", "thanks")]
    assert [r.conversation_count for r in first] == [1, 2, 3]
    assert {r.session_id for r in first} == {first[0].session_id}
    assert first[-1].session_status == "ended"
    assert first[-1].end_reason == "conversation_limit"
    assert first[-1].response.startswith("You're welcome")  # the limit's reply is delivered
    assert first[0].storage == "redis"

    client = service.storage.client
    assert client is not None
    assert await thread_keys(client, first[0].session_id) == []  # gone at once
    record = await service.manager.storage.current.sessions.ended_record(first[0].session_id)
    assert record is not None
    assert (record.endReason, record.conversationCount) == ("conversation_limit", 3)

    nxt = await service.chat("alice", "hello again")
    assert nxt.session_id != first[0].session_id
    assert nxt.conversation_count == 1


@pytest.mark.parametrize(("idle_s", "reason"), [(20, "inactivity"), (None, "duration")])
async def test_time_limits_end_the_session_and_the_message_is_answered(
    each_redis_url: str, idle_s: float | None, reason: str
) -> None:
    service = Service(settings_for(each_redis_url, max_conversations_per_session=100), Clock())
    await service.storage.start()
    first = await service.chat("bob", "Weather in Oslo?")
    if idle_s is not None:
        service.clock.advance(idle_s)
    else:
        for _ in range(3):  # busy every 15 s: it still ends 60 s after its start
            service.clock.advance(15)
            await service.chat("bob", "hi")
        service.clock.advance(15)
    answer = await service.chat("bob", "and tomorrow?")
    assert answer.session_id != first.session_id
    assert answer.conversation_count == 1
    assert "Which place" in answer.response  # a new session: it does not know Oslo
    ended = await service.storage.current.sessions.ended("bob", 10)
    assert [(r.sessionId, r.endReason) for r in ended] == [(first.session_id, reason)]
    assert service.storage.client is not None
    assert await thread_keys(service.storage.client, first.session_id) == []
    await service.storage.close()


async def test_cleanup_ends_expired_sessions_and_deletes_their_data(service: Service) -> None:
    sessions = [await service.chat(f"user{i}", "Weather in Paris?") for i in range(5)]
    client = service.storage.client
    assert client is not None
    assert all([await thread_keys(client, s.session_id) for s in sessions])
    service.clock.advance(21)
    ended = await service.cleanup.run_once()
    assert sorted(r.sessionId for r in ended) == sorted(s.session_id for s in sessions)
    assert {r.endReason for r in ended} == {"inactivity"}
    for session in sessions:
        assert await thread_keys(client, session.session_id) == []
    stats = await service.storage.current.sessions.stats()
    assert stats["activeSessions"] == 0
    assert stats["endedByReason"]["inactivity"] == 5
    assert stats["cleanup"]["runs"] == 1
    assert await service.cleanup.run_once() == []  # each session ends once


async def test_manual_end(service: Service) -> None:
    turn = await service.chat("carol", "Weather in Lima?")
    ended = await service.manager.end_user_sessions("carol")
    assert ended == [turn.session_id]
    client = service.storage.client
    assert client is not None
    assert await thread_keys(client, turn.session_id) == []
    assert await service.manager.end_user_sessions("carol") == []
    record = await service.storage.current.sessions.ended_record(turn.session_id)
    assert record is not None
    assert record.endReason == "manual"


async def test_a_late_write_cannot_bring_a_session_back(service: Service) -> None:
    turn = await service.chat("dan", "Weather in Cairo?")
    backing = service.storage.current
    graph = service.manager.graph(backing)
    config: RunnableConfig = {"configurable": {"thread_id": turn.session_id, "user_id": "dan"}}
    state = await graph.aget_state(config)
    await service.manager.end_user_sessions("dan")
    await graph.aupdate_state(config, {"messages": state.values["messages"]})  # a late write
    client = service.storage.client
    assert client is not None
    assert await thread_keys(client, turn.session_id) == []


async def test_user_facts_survive_into_a_new_session(service: Service) -> None:
    await service.chat("erin", "I'm Erin")
    await service.chat("erin", "Weather in Oslo in Fahrenheit")
    await service.manager.end_user_sessions("erin")
    answer = await service.chat("erin", "what's my name?")
    assert answer.response == "Your name is Erin."
    assert "°F" in (await service.chat("erin", "weather in Rome")).response
    client = service.storage.client
    assert client is not None
    ttl = await client.pttl(f"{keys.PREFIX}:store:users/erin:facts")
    assert 0 < ttl <= 3600 * 1000


async def test_two_first_messages_at_once_make_one_session(redis_url: str) -> None:
    """Two server processes (two managers on one Redis), one user, simultaneous first turns:
    one session; the second message is either answered in it or refused as busy."""
    clock = Clock()
    one, two = Service(settings_for(redis_url), clock), Service(settings_for(redis_url), clock)
    await one.storage.start()
    await two.storage.start()
    for attempt in range(5):
        user = f"frank{attempt}"
        results = await asyncio.gather(
            one.chat(user, "hi"), two.chat(user, "hello"), return_exceptions=True
        )
        answered = [r for r in results if isinstance(r, TurnResult)]
        refused = [r for r in results if isinstance(r, SessionBusyError)]
        assert len(answered) + len(refused) == 2
        assert len({r.session_id for r in answered}) == 1
        sessions = await one.manager.active_sessions(user)
        assert len(sessions) == 1
        assert sessions[0].conversation_count == len(answered)
    await one.storage.close()
    await two.storage.close()


async def test_two_processes_end_each_session_once(redis_url: str) -> None:
    clock = Clock()
    one, two = Service(settings_for(redis_url), clock), Service(settings_for(redis_url), clock)
    await one.storage.start()
    await two.storage.start()
    for i in range(30):
        await (one if i % 2 else two).chat(f"u{i}", "hi")
    clock.advance(21)
    ended_one, ended_two = await asyncio.gather(one.cleanup.run_once(), two.cleanup.run_once())
    ids = [r.sessionId for r in ended_one + ended_two]
    assert len(ids) == 30
    assert len(set(ids)) == 30
    await one.storage.close()
    await two.storage.close()


async def test_redis_memory_stays_bounded(redis_url: str) -> None:
    """100 messages with a 20-conversation limit: never more than one session's thread data,
    and Redis memory back to where it started once everything ended and was cleaned."""
    settings = settings_for(
        redis_url,
        max_conversations_per_session=20,
        session_duration=3600,
        inactivity_timeout=900,
    )
    svc = Service(settings, Clock())
    await svc.storage.start()
    client = svc.storage.client
    assert client is not None
    # Warm up (loads the Lua scripts, opens connections) before taking the baseline.
    await svc.chat("warmup", "hi")
    await svc.manager.end_user_sessions("warmup")

    async def used_memory() -> int:
        # Redis counts its Lua heap in used_memory and collects it lazily: collect first.
        await client.eval("collectgarbage('collect')", 0)
        return int((await client.info("memory"))["used_memory"])

    baseline = await used_memory()

    peak_thread_bytes = 0
    sessions = set()
    heavy_threads = keys.shard_patterns(keys.shard_of("heavy"))[1] % "session:heavy:*"
    for i in range(100):
        turn = await svc.chat("heavy", f"What's the weather in {['Paris', 'Rome', 'Oslo'][i % 3]}?")
        sessions.add(turn.session_id)
        threads = [k async for k in client.scan_iter(match=heavy_threads)]
        assert len(threads) <= 1
        for key in threads:
            peak_thread_bytes = max(peak_thread_bytes, await client.memory_usage(key) or 0)
    assert len(sessions) == 5  # 100 messages / 20 per session

    await svc.manager.end_user_sessions("heavy")
    svc.clock.advance(3600)
    await svc.cleanup.run_once()
    after = await used_memory()
    print(f"\nbaseline {baseline} B, after {after} B, peak thread {peak_thread_bytes} B")
    assert after <= baseline * 1.05
    await svc.storage.close()


async def test_a_message_in_a_running_session_is_four_round_trips(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn lock with the session, the thread's read, the turn's one checkpoint
    (durability "exit"), the count with the unlock."""
    await service.chat("trips", "Weather in Rome?")
    client = service.storage.client
    assert client is not None
    sent: list[str] = []
    send: Callable[..., Awaitable[Any]] = client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await send(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    answer = await service.chat("trips", "and tomorrow?")
    assert answer.conversation_count == 2
    assert "Rome" in answer.response
    assert sent == ["EVALSHA", "HGETALL", "EVALSHA", "EVALSHA"]


# --- double texting, in process memory (Redis down or not configured) ----------------------


async def test_memory_storage_queues_a_users_messages_in_arrival_order() -> None:
    service = Service(settings_for(None, max_conversations_per_session=10), Clock())
    await service.storage.start()
    # Tasks start in this order, so the messages reach the queue in it.
    results = await asyncio.gather(*(service.chat("queued", f"hi {i}") for i in range(6)))
    assert [r.conversation_count for r in results] == [1, 2, 3, 4, 5, 6]
    assert len({r.session_id for r in results}) == 1
    graph = service.manager.graph(service.storage.memory)
    state = await graph.aget_state({"configurable": {"thread_id": results[0].session_id}})
    said = [m.text for m in state.values["messages"] if m.type == "human"]
    assert said == [f"hi {i}" for i in range(6)]
    await service.storage.close()


@pytest.mark.parametrize(
    ("mode", "timeout_s"), [("enqueue", 0.3), ("reject", 30.0)], ids=["enqueue", "reject"]
)
async def test_a_message_behind_a_long_turn_is_refused_after_its_wait(
    mode: str, timeout_s: float
) -> None:
    settings = settings_for(None, double_texting=mode, double_texting_timeout=timeout_s)
    service = Service(settings, Clock())
    await service.storage.start()
    sessions = service.storage.memory.sessions
    assert await sessions.try_lock("patient", "a-long-turn", 60_000)
    started = time.monotonic()
    with pytest.raises(SessionBusyError):
        await service.chat("patient", "hi")
    waited = time.monotonic() - started
    # enqueue: only once its wait is over; reject: at once, not after DOUBLE_TEXTING_TIMEOUT
    assert waited >= timeout_s if mode == "enqueue" else waited < timeout_s
    # The refused message left the queue: the next one gets the lock as soon as it is free.
    await sessions.unlock("patient", "a-long-turn")
    assert await sessions.try_lock("patient", "next", 60_000, queue_ms=5_000)
    await service.storage.close()


async def test_the_session_record_is_kept_once(service: Service) -> None:
    """The index holds the session; its thread holds the conversation and the user's facts,
    no copy of the session (nor the run's verdict, which is never checkpointed)."""
    await service.chat("quinn", "I'm Quinn")
    second = await service.chat("quinn", "Weather in Rome?")
    backing = service.storage.current
    state = await service.manager.graph(backing).aget_state(
        {"configurable": {"thread_id": second.session_id}}
    )
    assert set(state.values) == {"messages", "user_facts"}
    assert [m.type for m in state.values["messages"]][:1] == ["human"]
    # The count comes from the index's record, counted once per conversation there.
    session = await backing.sessions.get(second.session_id)
    assert session is not None
    assert session.conversation_count == second.conversation_count == 2


async def test_the_count_follows_the_index_record(service: Service) -> None:
    """A conversation recorded elsewhere (another process, the same session) counts: the
    policy counts from the index's record, not from a count of its own."""
    first = await service.chat("rita", "hi")
    backing = service.storage.current
    session = await backing.sessions.get(first.session_id)
    assert session is not None
    await backing.sessions.record_turn(session, service.clock(), 2)  # a turn elsewhere
    third = await service.chat("rita", "thanks")
    assert (third.conversation_count, third.session_status) == (3, "ended")
    assert third.end_reason == "conversation_limit"
