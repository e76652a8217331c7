"""The latest checkpoint of session threads kept in memory (`checkpoint_cache`), on a real Redis.

A read served from memory must be exactly what a rebuild from Redis would return, and
anything that changes the stored checkpoint (another process's turn, an ended session,
pending writes) must make the saver rebuild it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from session_policy import keys
from session_policy.checkpoint_cache import HotCheckpoint, HotCheckpoints
from session_policy.checkpointer import RedisSessionSaver
from session_policy.config import SessionSettings
from session_policy.storage import Storage
from tests.session_policy.test_checkpointer import (
    QUESTIONS,
    RoundTrips,
    offline_graph,
    shape,
    thread_config,
)

pytestmark = pytest.mark.integration

THREAD = "session:alice:1764072000000"


class CountingSaver(RedisSessionSaver):
    """Counts the checkpoints it rebuilt from Redis (what the cache saves)."""

    rebuilt = 0

    def _make_tuple(self, *args: Any, **kwargs: Any) -> Any:
        self.rebuilt += 1
        return super()._make_tuple(*args, **kwargs)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    # the session's guard key, as the session store writes it
    client.hset(keys.session_meta(THREAD), keys.EXPIRES_AT_FIELD, int(time.time() * 1000) + 60_000)
    yield client
    client.close()


@pytest.fixture
async def savers(redis_url: str, r: redis.Redis) -> AsyncIterator[list[CountingSaver]]:
    """Two guarded savers with clients of their own: two server processes."""
    made = [CountingSaver.from_url(redis_url) for _ in range(2)]
    yield made
    for saver in made:
        await saver.aclose()


async def test_a_session_turn_reads_its_checkpoint_from_memory(
    savers: list[CountingSaver], monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = savers[0]
    graph, reference = offline_graph(saver), offline_graph(InMemorySaver())
    config = thread_config(THREAD)
    for question in QUESTIONS[:3]:
        for g in (graph, reference):
            await g.ainvoke({"messages": [("user", question)]}, config, durability="exit")
    assert saver.rebuilt == 0  # every read found the checkpoint the last turn stored

    trips = RoundTrips(saver, monkeypatch)
    answer = await graph.ainvoke({"messages": [("user", QUESTIONS[3])]}, config, durability="exit")
    expected = await reference.ainvoke(
        {"messages": [("user", QUESTIONS[3])]}, config, durability="exit"
    )
    assert trips.take() == {"EVALSHA": 2}  # the check of the checkpoint held, the new one
    assert saver.rebuilt == 0
    assert shape(answer["messages"]) == shape(expected["messages"])

    # what memory served is what Redis holds
    fresh = CountingSaver(saver.redis, sync_redis=saver.sync_redis, hot=False)
    held, stored = await saver.aget_tuple(config), await fresh.aget_tuple(config)
    assert held is not None
    assert stored is not None
    assert fresh.rebuilt == 1
    assert held.config == stored.config
    assert held.parent_config == stored.parent_config
    assert held.metadata == stored.metadata
    assert held.pending_writes == stored.pending_writes == []
    assert held.checkpoint["channel_versions"] == stored.checkpoint["channel_versions"]
    assert held.checkpoint["versions_seen"] == stored.checkpoint["versions_seen"]
    held_values, stored_values = (
        held.checkpoint["channel_values"],
        stored.checkpoint["channel_values"],
    )
    assert set(held_values) == set(stored_values)
    assert [m.model_dump() for m in held_values["messages"]] == [
        m.model_dump() for m in stored_values["messages"]
    ]


async def test_two_processes_taking_turns_see_each_others_turns(
    savers: list[CountingSaver],
) -> None:
    graphs = [offline_graph(s) for s in savers]
    reference = offline_graph(InMemorySaver())
    config = thread_config(THREAD)
    for i, question in enumerate(QUESTIONS[:6]):
        answer = await graphs[i % 2].ainvoke(
            {"messages": [("user", question)]}, config, durability="exit"
        )
        expected = await reference.ainvoke(
            {"messages": [("user", question)]}, config, durability="exit"
        )
        assert shape(answer["messages"]) == shape(expected["messages"]), question
    # each turn found the other process's checkpoint in Redis, not its own stale one
    assert [s.rebuilt for s in savers] == [2, 3]


async def test_an_ended_session_reads_as_empty(savers: list[CountingSaver], r: redis.Redis) -> None:
    saver = savers[0]
    config = thread_config(THREAD)
    await offline_graph(saver).ainvoke({"messages": [("user", "Hi")]}, config, durability="exit")
    assert await saver.aget_tuple(config) is not None
    r.delete(keys.session_meta(THREAD), keys.thread(THREAD))  # as ending the session does
    assert await saver.aget_tuple(config) is None
    assert saver.get_tuple(config) is None


async def test_what_a_reader_changes_does_not_reach_the_next_read(
    savers: list[CountingSaver],
) -> None:
    saver = savers[0]
    config = thread_config(THREAD)
    await offline_graph(saver).ainvoke({"messages": [("user", "Hi")]}, config, durability="exit")
    first = await saver.aget_tuple(config)
    assert first is not None
    before = (
        len(first.checkpoint["channel_values"]["messages"]),
        dict(first.checkpoint["channel_versions"]),
        {k: dict(v) for k, v in first.checkpoint["versions_seen"].items()},
    )
    # what LangGraph does to a checkpoint while it runs, and a careless caller besides
    first.checkpoint["channel_values"]["messages"].append(HumanMessage("sneaked in"))
    first.checkpoint["channel_values"]["extra"] = 1
    first.checkpoint["channel_versions"]["messages"] = "99.ffffffff"
    for seen in first.checkpoint["versions_seen"].values():
        seen["messages"] = "99.ffffffff"
    second = await saver.aget_tuple(config)
    assert second is not None
    assert "extra" not in second.checkpoint["channel_values"]
    assert (
        len(second.checkpoint["channel_values"]["messages"]),
        second.checkpoint["channel_versions"],
        second.checkpoint["versions_seen"],
    ) == before
    assert saver.rebuilt == 0


async def test_writes_stored_after_the_checkpoint_are_read(savers: list[CountingSaver]) -> None:
    holder, other = savers
    config = thread_config(THREAD)
    await offline_graph(holder).ainvoke({"messages": [("user", "Hi")]}, config, durability="exit")
    latest = await holder.aget_tuple(config)
    assert latest is not None
    assert latest.pending_writes == []
    # another process stores a task's writes against that checkpoint
    await other.aput_writes(latest.config, [("messages", [AIMessage("pending")])], "task-1")
    again = await holder.aget_tuple(config)
    assert again is not None
    assert again.pending_writes is not None
    assert [(task, channel) for task, channel, _ in again.pending_writes] == [
        ("task-1", "messages")
    ]
    assert holder.rebuilt == 1


async def test_unguarded_threads_are_rebuilt_unless_asked(redis_url: str) -> None:
    config = thread_config("plain-thread")
    for hot, rebuilt in ((None, 1), (True, 0)):
        saver = CountingSaver.from_url(redis_url, guarded=False, hot=hot)
        try:
            graph = offline_graph(saver)
            await graph.ainvoke({"messages": [("user", "Hi")]}, config, durability="exit")
            await saver.aget_tuple(config)
            assert saver.rebuilt == rebuilt, hot
        finally:
            await saver.adelete_thread("plain-thread")
            await saver.aclose()


def test_the_cache_keeps_the_most_recently_used_threads() -> None:
    cache = HotCheckpoints(max_threads=2)
    entry = HotCheckpoint("cid", 10, {}, {}, None)  # type: ignore[typeddict-item]
    for thread in ("a", "b"):
        cache.remember(thread, "", entry)
    assert cache.get("a", "") is entry  # "a" is now the most recent
    cache.remember("c", "", entry)
    assert (cache.get("a", ""), cache.get("b", ""), cache.get("c", "")) == (entry, None, entry)
    cache.remember("a", "sub", entry)
    cache.forget("a", "")
    assert (cache.get("a", ""), cache.get("a", "sub")) == (None, entry)
    cache.forget("a")
    assert cache.get("a", "sub") is None
    assert len(HotCheckpoints(max_threads=0)) == 0


async def test_the_setting_sizes_the_cache(redis_url: str) -> None:
    for size in (0, 7):
        settings = SessionSettings(redis_url=redis_url, session_cache_threads=size)
        storage = Storage(settings, redis_url)
        try:
            assert storage.redis is not None
            saver = storage.redis.checkpointer
            assert isinstance(saver, RedisSessionSaver)
            assert saver._hot.max_threads == size
        finally:
            await storage.close()


async def test_reading_an_older_checkpoint_keeps_the_latest_in_memory(redis_url: str) -> None:
    saver = CountingSaver.from_url(redis_url, guarded=False, hot=True)  # keeps history
    try:
        graph, config = offline_graph(saver), thread_config("history-thread")
        for question in QUESTIONS[:2]:
            await graph.ainvoke({"messages": [("user", question)]}, config, durability="exit")
        older = [c async for c in saver.alist(config)][-1]
        rebuilt = saver.rebuilt
        by_id = await saver.aget_tuple(older.config)
        assert by_id is not None
        assert by_id.checkpoint["id"] == older.checkpoint["id"]
        assert saver.rebuilt == rebuilt + 1
        latest = await saver.aget_tuple(config)  # still the one held in memory
        assert latest is not None
        assert latest.checkpoint["id"] != older.checkpoint["id"]
        assert saver.rebuilt == rebuilt + 1
    finally:
        await saver.adelete_thread("history-thread")
        await saver.aclose()
