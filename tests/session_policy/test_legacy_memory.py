"""`MemoryStore` (deprecated): the original's operations on sessions, on Redis and in memory."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather
from server.config import Settings
from server.service import make_manager
from session_policy.config import SessionSettings
from session_policy.legacy_memory import MemoryStore
from session_policy.storage import Storage

Backend = str


@pytest.fixture(params=["redis", "memory"])
def backend(request: pytest.FixtureRequest) -> Backend:
    value: str = request.param
    return value


def settings_for(backend: Backend, redis_url: str, **limits: Any) -> SessionSettings:
    return SessionSettings(
        redis_url=redis_url if backend == "redis" else None,
        max_conversations_per_session=limits.pop("max_conversations_per_session", 3),
        **limits,
    )


def new_store(settings: SessionSettings) -> MemoryStore:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return MemoryStore(settings=settings)


@pytest.fixture
async def store(backend: Backend, redis_url: str) -> AsyncIterator[MemoryStore]:
    memory_store = new_store(settings_for(backend, redis_url))
    yield memory_store
    await memory_store.disconnect()


def user() -> str:
    return f"legacy-{uuid.uuid4().hex[:8]}"


def test_constructing_it_warns_that_it_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="MemoryStore is deprecated: use"):
        MemoryStore(use_redis=False)


async def test_it_stores_where_it_is_told(store: MemoryStore, backend: Backend) -> None:
    await store.initialize()
    assert store.redis_connected is (backend == "redis")
    assert (await store.get_memory_stats())["storageMode"] == backend


async def test_user_memory_is_the_name_kept_across_sessions(store: MemoryStore) -> None:
    alice = user()
    assert await store.get_memory(f"user:{alice}:name") is None
    await store.set_memory(f"user:{alice}:name", "Alice")
    await store.set_memory(f"user:{alice}:units", "imperial")
    assert await store.get_memory(f"user:{alice}:name") == "Alice"
    assert await store.get_memory(f"user:{alice}:units") == "imperial"
    await store.end_user_session(alice)  # facts outlive sessions
    assert await store.get_memory(f"user:{alice}:name") == "Alice"
    await store.set_memory(f"user:{alice}:name", "Ali", ttl=1)
    assert await store.get_memory(f"user:{alice}:name") == "Ali"
    await asyncio.sleep(1.2)
    assert await store.get_memory(f"user:{alice}:name") is None  # forgotten after its ttl
    with pytest.raises(ValueError, match="ttl=0"):
        await store.set_memory(f"user:{alice}:name", "x", ttl=0)
    with pytest.raises(KeyError, match="keeps only 'user:<userId>:name'"):
        await store.get_memory("conversation:session:x:1")
    with pytest.raises(ValueError, match="invalid userId"):
        await store.set_memory("user:a*b:name", "x")


async def test_conversations_go_into_the_user_s_session(store: MemoryStore) -> None:
    bob = user()
    first = await store.add_to_conversation_history(bob, "Hello", "Hi Bob!")
    second = await store.add_to_conversation_history(bob, "Weather in Oslo?", "Cold.")
    assert first == second
    assert first.startswith(f"session:{bob}:")
    history = await store.get_conversation_history(bob)
    assert [(h["message"], h["response"], h["sessionId"]) for h in history] == [
        ("Hello", "Hi Bob!", first),
        ("Weather in Oslo?", "Cold.", first),
    ]
    assert all(h["timestamp"].endswith("Z") for h in history)
    assert await store.get_conversation_history(bob, limit=1) == history[1:]
    assert await store.get_session_conversation_history(first) == history
    stats = await store.get_session_stats(bob)
    assert stats["activeSessions"] == 1
    assert (stats["sessions"][0]["sessionId"], stats["sessions"][0]["conversationCount"]) == (
        first,
        2,
    )


async def test_the_conversation_limit_starts_a_new_session(store: MemoryStore) -> None:
    carol = user()
    ids = [await store.add_to_conversation_history(carol, f"m{i}", f"r{i}") for i in range(4)]
    assert ids[0] == ids[1] == ids[2] != ids[3]  # the limit is 3
    assert [h["message"] for h in await store.get_conversation_history(carol)] == ["m3"]
    assert await store.get_session_conversation_history(ids[0]) == []  # its data is gone
    [record] = await store.manager.ended_sessions(carol, 10)
    assert (record.sessionId, record.endReason, record.conversationCount) == (
        ids[0],
        "conversation_limit",
        3,
    )


async def test_ending_a_user_s_sessions(store: MemoryStore) -> None:
    dave = user()
    session_id = await store.add_to_conversation_history(dave, "hi", "hello")
    assert await store.end_user_session(dave, "user_requested") == [session_id]
    assert await store.get_conversation_history(dave) == []
    assert (await store.get_session_stats(dave))["activeSessions"] == 0
    [record] = await store.manager.ended_sessions(dave, 10)
    assert record.endReason == "manual"


async def test_cleanup_ends_inactive_sessions(backend: Backend, redis_url: str) -> None:
    memory_store = new_store(settings_for(backend, redis_url, inactivity_timeout=1))
    try:
        erin = user()
        session_id = await memory_store.add_to_conversation_history(erin, "hi", "hello")
        assert await memory_store.cleanup_expired_sessions() == []
        await asyncio.sleep(1.2)
        [ended] = await memory_store.cleanup_expired_sessions()
        assert (ended["sessionId"], ended["endReason"]) == (session_id, "inactivity")
    finally:
        await memory_store.disconnect()


async def test_disconnect_keeps_redis_sessions_and_ends_memory_ones(
    backend: Backend, redis_url: str
) -> None:
    settings = settings_for(backend, redis_url)
    frank = user()
    first = new_store(settings)
    session_id = await first.add_to_conversation_history(frank, "hi", "hello")
    await first.disconnect()
    again = new_store(settings)
    try:
        history = await again.get_conversation_history(frank)
        if backend == "redis":
            assert [h["sessionId"] for h in history] == [session_id]
        else:  # memory sessions die with their store, as with the server
            assert history == []
    finally:
        await again.disconnect()


async def test_the_agent_sees_what_memory_store_wrote(redis_url: str) -> None:
    """Same Redis, same sessions: the agent knows the name and continues the conversation."""
    grace = user()
    legacy = new_store(settings_for("redis", redis_url, max_conversations_per_session=10))
    await legacy.set_memory(f"user:{grace}:name", "Grace")
    session_id = await legacy.add_to_conversation_history(grace, "Weather in Rome?", "Sunny.")
    await legacy.disconnect()

    settings = Settings(redis_url=redis_url, max_conversations_per_session=10)
    storage = Storage(settings, redis_url)
    await storage.start()
    manager = make_manager(settings, storage, model=OfflineChatModel(), weather=SimulatedWeather())
    try:
        # A new session (the agent's first turn of it) reads the name MemoryStore set.
        await manager.end_user_sessions(grace)
        answer = await manager.chat(grace, "what's my name?")
        assert answer.response == "Your name is Grace."
        assert answer.session_id != session_id
    finally:
        await storage.close()

    again = new_store(settings_for("redis", redis_url, max_conversations_per_session=10))
    try:
        [turn] = await again.get_conversation_history(grace)  # the agent's turn, read back
        assert (turn["message"], turn["response"]) == ("what's my name?", "Your name is Grace.")
    finally:
        await again.disconnect()
