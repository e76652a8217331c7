"""`RedisSessionSaver` on a real Redis: LangGraph's conformance suite, the agent graph,
the session guard, memory growth, deletion and isolation of threads.

Run with `-s` to see the conformance report and the memory numbers.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from agent import build_graph
from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather
from session_policy import keys
from session_policy.checkpointer import RedisSessionSaver, _frames, _split_record
from tests.conftest import fixed_clock

pytestmark = pytest.mark.integration

Graph = CompiledStateGraph[Any, Any, Any, Any]

# A conversation for the offline model: tool calls, follow-ups, small talk.
QUESTIONS = [
    "What's the weather in London?",
    "and tomorrow?",
    "what about Paris?",
    "in Fahrenheit",
    "Tokyo this weekend",
    "next 3 days in New York",
    "Hi, I'm Alice",
    "what's my name?",
    "Weather in Berlin on Friday?",
    "this week in Madrid",
]
BASE_CAPABILITIES = ("put", "put_writes", "get_tuple", "list", "delete_thread")


def thread_config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def offline_graph(checkpointer: Any) -> Graph:
    """The agent with a fresh offline model and simulated weather on the fixed clock."""
    return build_graph(
        checkpointer,
        model=OfflineChatModel(clock=fixed_clock),
        weather=SimulatedWeather(clock=fixed_clock),
    )


def shape(messages: Sequence[BaseMessage]) -> list[tuple[str, Any, Any]]:
    """What a conversation says, without the random message ids."""
    return [
        (
            m.type,
            m.content,
            [(c["name"], c["args"]) for c in m.tool_calls] if isinstance(m, AIMessage) else None,
        )
        for m in messages
    ]


def dumped(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [m.model_dump() for m in messages]


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


@pytest.fixture
async def saver(redis_url: str) -> AsyncIterator[RedisSessionSaver]:
    """An unguarded saver (as for `langgraph dev`), with both clients."""
    saver = RedisSessionSaver.from_url(redis_url, guarded=False)
    yield saver
    await saver.aclose()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = sync_client(redis_url)
    yield client
    client.close()


def checkpoint_of(
    values: dict[str, Any], versions: ChannelVersions, *, step: int = 0
) -> Checkpoint:
    return {
        "v": 4,
        "id": str(uuid6(clock_seq=step)),
        "ts": "2026-11-25T12:00:00+00:00",
        "channel_values": values,
        "channel_versions": versions,
        "versions_seen": {},
        "updated_channels": sorted(values),
    }


def metadata_of(step: int = 0) -> CheckpointMetadata:
    return {"source": "loop", "step": step, "parents": {}}


def stored_write_kinds(client: redis.Redis, thread_id: str) -> dict[str, int]:
    """How the thread's pending writes are stored: literal (V) or reference (R)."""
    kinds = {"V": 0, "R": 0}
    fields = cast(dict[bytes, bytes], client.hgetall(keys.thread(thread_id)))
    for field, value in fields.items():
        if field.startswith(b"c"):
            for write in _split_record(value)[1]:
                kinds[write.payload[:1].decode()] += 1
    return kinds


class RoundTrips:
    """Counts the commands a saver sends, by name: each one is a round trip."""

    def __init__(self, saver: RedisSessionSaver, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        if saver.redis is not None:
            send: Callable[..., Awaitable[Any]] = saver.redis.execute_command

            async def counted(*args: Any, **options: Any) -> Any:
                self.calls[str(args[0]).upper()] += 1
                return await send(*args, **options)

            monkeypatch.setattr(saver.redis, "execute_command", counted)
        if saver.sync_redis is not None:
            sync_send: Callable[..., Any] = saver.sync_redis.execute_command

            def sync_counted(*args: Any, **options: Any) -> Any:
                self.calls[str(args[0]).upper()] += 1
                return sync_send(*args, **options)

            monkeypatch.setattr(saver.sync_redis, "execute_command", sync_counted)

    def take(self) -> dict[str, int]:
        calls = dict(self.calls)
        self.calls.clear()
        return calls


# --------------------------------------------------------------------------- conformance


class SyncPathSaver(RedisSessionSaver):
    """The async API answered by the sync methods: the conformance suite over them."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)


@pytest.mark.parametrize("hot", [False, True], ids=["rebuilt", "hot"])
@pytest.mark.parametrize("saver_class", [RedisSessionSaver, SyncPathSaver])
async def test_conformance(redis_url: str, saver_class: type[RedisSessionSaver], hot: bool) -> None:
    """LangGraph's own checkpointer conformance suite, async and sync paths, unguarded;
    "hot": with the latest checkpoints kept in memory (as for session threads)."""

    async def fresh_saver() -> AsyncIterator[RedisSessionSaver]:
        saver = saver_class.from_url(redis_url, guarded=False, hot=hot)
        yield saver
        await saver.aclose()

    registered = checkpointer_test(name=f"{saver_class.__name__}-{hot}")(fresh_saver)
    report = await validate(registered)
    report.print_report()
    for capability in BASE_CAPABILITIES:
        result = report.results[capability]
        assert result.passed is True, (capability, result.failures)
        assert result.tests_passed > 0
    assert report.passed_all_base()


# --------------------------------------------------------------------------- the agent graph


async def test_async_conversation_matches_in_memory_saver(
    saver: RedisSessionSaver, redis_url: str
) -> None:
    memory_graph, redis_graph = offline_graph(InMemorySaver()), offline_graph(saver)
    config = thread_config("async-thread")
    for question in QUESTIONS:
        turn = {"messages": [("user", question)]}
        expected = await memory_graph.ainvoke(turn, config)
        got = await redis_graph.ainvoke(turn, config)
        assert shape(got["messages"]) == shape(expected["messages"])
    assert "Madrid" in got["messages"][-1].text

    # another process (no delta cache) reads back exactly the same messages, ids included
    other = RedisSessionSaver.from_url(redis_url, guarded=False)
    try:
        state = await offline_graph(other).aget_state(config)
        assert dumped(state.values["messages"]) == dumped(got["messages"])
        assert state.next == ()
    finally:
        await other.aclose()

    # the whole history, checkpoint by checkpoint, says what InMemorySaver's says
    expected_history = [s async for s in memory_graph.aget_state_history(config)]
    history = [s async for s in redis_graph.aget_state_history(config)]
    assert len(history) == len(expected_history)
    for snapshot, expected_snapshot in zip(history, expected_history, strict=True):
        assert shape(snapshot.values.get("messages", [])) == shape(
            expected_snapshot.values.get("messages", [])
        )
        assert snapshot.next == expected_snapshot.next
        assert snapshot.metadata is not None
        assert expected_snapshot.metadata is not None
        assert snapshot.metadata["step"] == expected_snapshot.metadata["step"]


async def test_sync_conversation_matches_in_memory_saver(saver: RedisSessionSaver) -> None:
    memory_graph, redis_graph = offline_graph(InMemorySaver()), offline_graph(saver)
    config = thread_config("sync-thread")
    for question in QUESTIONS[:6]:
        turn = {"messages": [("user", question)]}
        expected = memory_graph.invoke(turn, config)
        got = await asyncio.to_thread(redis_graph.invoke, turn, config)
        assert shape(got["messages"]) == shape(expected["messages"])
    state = await asyncio.to_thread(redis_graph.get_state, config)
    assert dumped(state.values["messages"]) == dumped(got["messages"])

    # the same thread goes on with the async API (the other client)
    follow_up = {"messages": [("user", "and tomorrow?")]}
    expected = await memory_graph.ainvoke(follow_up, config)
    got = await redis_graph.ainvoke(follow_up, config)
    assert shape(got["messages"]) == shape(expected["messages"])
    assert got["messages"][-1].text.startswith("Tomorrow in New York")


async def test_stream_messages(saver: RedisSessionSaver) -> None:
    graph = offline_graph(saver)
    config = thread_config("stream-thread")
    await graph.ainvoke({"messages": [("user", "Weather in Madrid?")]}, config)
    tokens: list[str] = []
    async for chunk, metadata in graph.astream(
        {"messages": [("user", "and tomorrow?")]}, config, stream_mode="messages"
    ):
        assert isinstance(metadata, dict)
        if isinstance(chunk, AIMessageChunk) and metadata["langgraph_node"] == "model":
            tokens.append(chunk.text)
    answer = "".join(tokens)
    assert answer.startswith("Tomorrow in Madrid, Spain")
    state = await graph.aget_state(config)
    assert state.values["messages"][-1].text == answer
    assert len(state.values["messages"]) == 8


async def test_pending_writes_are_shared_with_the_messages_they_appended(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    """A node's write to `messages` is stored once: as a reference into the next version."""
    graph = offline_graph(saver)
    config = thread_config("writes-thread")
    for question in QUESTIONS[:4]:
        await graph.ainvoke({"messages": [("user", question)]}, config)
    kinds = stored_write_kinds(r, "writes-thread")
    print(f"\npending writes stored as literal / reference: {kinds}")
    assert kinds["R"] >= 8  # model and tool messages of 4 turns

    # every checkpoint's writes read back as what its child appended
    tuples = {t.config["configurable"]["checkpoint_id"]: t async for t in saver.alist(config)}
    compared = 0
    for child in tuples.values():
        parent_id = child.parent_config and child.parent_config["configurable"]["checkpoint_id"]
        if not parent_id:
            continue
        parent = tuples[parent_id]
        before = parent.checkpoint["channel_values"].get("messages", [])
        appended = child.checkpoint["channel_values"].get("messages", [])[len(before) :]
        written = [
            m
            for _, channel, value in parent.pending_writes or []
            if channel == "messages" and isinstance(value, list)
            for m in value
            if isinstance(m, BaseMessage)
        ]
        if written:
            assert shape(written) == shape(appended)
            compared += 1
    assert compared >= 8


def interrupting_graph(checkpointer: Any) -> Graph:
    """A subgraph that asks (interrupt), then nodes that edit and trim the messages."""

    def ask(state: MessagesState) -> dict[str, Any]:
        name = interrupt("name?")
        return {"messages": [AIMessage(f"hello {name}")]}

    def edit(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]  # replaced by id, with a new object
        return {"messages": [AIMessage(f"{last.text}!", id=last.id)]}

    def trim(state: MessagesState) -> dict[str, Any]:
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *state["messages"][-3:]]}

    sub = StateGraph(MessagesState)
    sub.add_node("ask", ask)
    sub.add_edge(START, "ask")
    builder = StateGraph(MessagesState)
    builder.add_node("sub", sub.compile())
    builder.add_node("edit", edit)
    builder.add_node("trim", trim)
    builder.add_edge(START, "sub")
    builder.add_edge("sub", "edit")
    builder.add_edge("edit", "trim")
    return builder.compile(checkpointer=checkpointer)


async def test_interrupts_subgraphs_edits_and_removals(saver: RedisSessionSaver) -> None:
    """Beyond appending: replaced and removed messages, and a subgraph's namespace."""

    async def run(graph: Graph) -> list[Any]:
        config = thread_config("interrupts")
        seen: list[Any] = []
        for turn in range(3):
            asked = await graph.ainvoke({"messages": [HumanMessage(f"hi {turn}")]}, config)
            seen.append([i.value for i in asked["__interrupt__"]])
            state = await graph.aget_state(config, subgraphs=True)
            seen.append([task.state is not None for task in state.tasks])
            answered = await graph.ainvoke(Command(resume=f"bob {turn}"), config)
            seen.append(shape(answered["messages"]))
        history = [s async for s in graph.aget_state_history(config)]
        seen.append([shape(s.values.get("messages", [])) for s in history])
        seen.append([s.next for s in history])
        return seen

    expected = await run(interrupting_graph(InMemorySaver()))
    got = await run(interrupting_graph(saver))
    assert got == expected
    assert got[2] == [("human", "hi 0", None), ("ai", "hello bob 0!", [])]
    assert got[8] == [
        ("ai", "hello bob 1!", []),
        ("human", "hi 2", None),
        ("ai", "hello bob 2!", []),
    ]
    namespaces = {t.config["configurable"]["checkpoint_ns"] async for t in saver.alist(None)}
    assert "" in namespaces
    assert any(ns.startswith("sub:") for ns in namespaces)


# --------------------------------------------------------------------------- the guard


def scan_thread(client: redis.Redis, thread_id: str) -> set[bytes]:
    return set(client.scan_iter(match=f"*{thread_id}*", count=1000))


async def test_guarded_run_keeps_one_key_that_expires_with_the_session(
    redis_url: str, r: redis.Redis
) -> None:
    thread_id = "session:alice:1764072000000"
    meta, thread = keys.session_meta(thread_id), keys.thread(thread_id)
    expires_at = int(time.time() * 1000) + 60_000
    r.hset(meta, keys.EXPIRES_AT_FIELD, expires_at)
    saver = RedisSessionSaver.from_url(redis_url)  # guarded by default
    try:
        graph = offline_graph(saver)
        config = thread_config(thread_id)
        for question in QUESTIONS[:3]:
            await graph.ainvoke({"messages": [("user", question)]}, config)
        await asyncio.to_thread(graph.invoke, {"messages": [("user", "in Fahrenheit")]}, config)

        assert scan_thread(r, thread_id) == {meta.encode(), thread.encode()}
        assert r.pexpiretime(thread) == expires_at
        latest = await saver.aget_tuple(config)
        assert latest is not None
        assert len(latest.checkpoint["channel_values"]["messages"]) == 16

        # the session ends (both keys deleted): late writes must not bring the thread back
        r.delete(meta, thread)
        late = latest.checkpoint.copy()
        late["id"] = str(uuid6(clock_seq=99))
        version = saver.get_next_version(None, None)
        late["channel_versions"] = {"messages": version}
        late["channel_values"] = {"messages": [HumanMessage("late", id="late")]}
        returned = await saver.aput(latest.config, late, metadata_of(99), {"messages": version})
        assert returned["configurable"]["checkpoint_id"] == late["id"]
        await saver.aput_writes(latest.config, [("messages", [AIMessage("late")])], "task-1")
        saver.put_writes(latest.config, [("messages", [AIMessage("late")])], "task-2")
        answer = await graph.ainvoke({"messages": [("user", "Weather in Rome?")]}, config)
        assert "Rome" in answer["messages"][-1].text  # the turn answers, nothing is saved
        assert scan_thread(r, thread_id) == set()
        assert await saver.aget_tuple(config) is None
    finally:
        await saver.aclose()


async def test_past_deadline_deletes_the_thread(redis_url: str, r: redis.Redis) -> None:
    thread_id = "session:bob:1764072000000"
    r.hset(keys.session_meta(thread_id), keys.EXPIRES_AT_FIELD, int(time.time() * 1000) - 1)
    saver = RedisSessionSaver.from_url(redis_url)
    try:
        await offline_graph(saver).ainvoke(
            {"messages": [("user", "Weather in Oslo?")]}, thread_config(thread_id)
        )
        assert r.exists(keys.thread(thread_id)) == 0
        assert scan_thread(r, thread_id) == {keys.session_meta(thread_id).encode()}
    finally:
        await saver.aclose()


async def test_guard_without_deadline_writes_and_warns(
    redis_url: str, r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    thread_id = "session:carol:1764072000000"
    r.hset(keys.session_meta(thread_id), "userId", "carol")
    saver = RedisSessionSaver.from_url(redis_url)
    try:
        with caplog.at_level(logging.WARNING, logger="session_policy.checkpointer"):
            await offline_graph(saver).ainvoke(
                {"messages": [("user", "Weather in Oslo?")]}, thread_config(thread_id)
            )
        assert r.pttl(keys.thread(thread_id)) == -1
        assert any(keys.EXPIRES_AT_FIELD in record.getMessage() for record in caplog.records)
    finally:
        await saver.aclose()


async def test_ttl_and_deadline_the_sooner_wins(redis_url: str, r: redis.Redis) -> None:
    now = int(time.time() * 1000)
    far, near = "session:dan:1", "session:eve:1"
    r.hset(keys.session_meta(far), keys.EXPIRES_AT_FIELD, now + 3_600_000)
    r.hset(keys.session_meta(near), keys.EXPIRES_AT_FIELD, now + 10_000)
    saver = RedisSessionSaver.from_url(redis_url, ttl_seconds=60)
    try:
        graph = offline_graph(saver)
        for thread_id in (far, near):
            await graph.ainvoke({"messages": [("user", "Hi")]}, thread_config(thread_id))
        assert now < r.pexpiretime(keys.thread(far)) <= int(time.time() * 1000) + 60_000
        assert r.pexpiretime(keys.thread(near)) == now + 10_000
    finally:
        await saver.aclose()


async def test_unguarded_ttl_and_guard_per_thread(redis_url: str, r: redis.Redis) -> None:
    ttl_saver = RedisSessionSaver.from_url(redis_url, guarded=False, ttl_seconds=30)
    per_thread = RedisSessionSaver.from_url(
        redis_url, guarded=lambda thread_id: thread_id.startswith("session:")
    )
    try:
        await offline_graph(ttl_saver).ainvoke({"messages": [("user", "Hi")]}, thread_config("t"))
        assert 0 < r.pttl(keys.thread("t")) <= 30_000

        graph = offline_graph(per_thread)
        await graph.ainvoke({"messages": [("user", "Hi")]}, thread_config("dev-thread"))
        await graph.ainvoke({"messages": [("user", "Hi")]}, thread_config("session:x:1"))
        assert r.exists(keys.thread("dev-thread")) == 1
        assert r.pttl(keys.thread("dev-thread")) == -1
        assert r.exists(keys.thread("session:x:1")) == 0  # guarded, and no session
    finally:
        await ttl_saver.aclose()
        await per_thread.aclose()


# --------------------------------------------------------------------------- memory


async def test_memory_grows_linearly_and_stays_close_to_the_messages(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    graph = offline_graph(saver)
    thread_id = "memory-thread"
    config = thread_config(thread_id)
    memory: dict[int, int] = {}
    for turn in range(1, 41):
        state = await graph.ainvoke({"messages": [("user", QUESTIONS[(turn - 1) % 10])]}, config)
        if turn in (10, 20, 40):
            used = r.memory_usage(keys.thread(thread_id), samples=0)
            assert used is not None
            size = len(json.dumps(dumped(state["messages"])))
            memory[turn] = used
            print(
                f"\n{turn} turns, {len(state['messages'])} messages: Redis {used} bytes, "
                f"messages as JSON {size} bytes, ratio {used / size:.2f}, "
                f"{r.hlen(keys.thread(thread_id))} fields"
            )
            assert used / size < 3
    assert memory[20] < 2.5 * memory[10]
    assert memory[40] < 2.5 * memory[20]


async def test_list_values_are_stored_as_deltas(saver: RedisSessionSaver, r: redis.Redis) -> None:
    """Growing a list by one item stores one item, not the list again."""
    config = thread_config("delta-thread")
    messages: list[BaseMessage] = []
    parent: RunnableConfig = {"configurable": {"thread_id": "delta-thread", "checkpoint_ns": ""}}
    version: str | None = None
    sizes = []
    for step in range(6):
        text = os.urandom(500).hex()  # hardly compressible: each message weighs ~1 KB
        messages = [*messages, HumanMessage(text, id=f"m{step}")]
        version = saver.get_next_version(version, None)
        checkpoint = checkpoint_of({"messages": messages}, {"messages": version}, step=step)
        parent = await saver.aput(parent, checkpoint, metadata_of(step), {"messages": version})
        sizes.append(sum(len(v) for v in r.hgetall(keys.thread("delta-thread")).values()))
    growth = [b - a for a, b in itertools.pairwise(sizes)]
    print(f"\nbytes stored per appended message: {growth}")
    assert max(growth) < 1.3 * min(growth)  # one message each time, not the whole list
    latest = await saver.aget_tuple(config)
    assert latest is not None
    assert dumped(latest.checkpoint["channel_values"]["messages"]) == dumped(messages)
    # and every older checkpoint still reads its own list
    lengths = [len(t.checkpoint["channel_values"]["messages"]) async for t in saver.alist(config)]
    assert lengths == [6, 5, 4, 3, 2, 1]


def message_pieces(client: redis.Redis, thread_id: str) -> dict[str, int]:
    """How the versions of `messages` are stored: full (F) or delta (D) pieces."""
    kinds = {"F": 0, "D": 0}
    fields = cast(dict[bytes, bytes], client.hgetall(keys.thread(thread_id)))
    for field, value in fields.items():
        if field.startswith(b"v"):
            it = _frames(value)
            for channel, piece in zip(it, it, strict=True):
                if channel == b"messages":
                    kinds[piece[:1].decode()] += 1
    return kinds


async def test_deltas_survive_other_readers(saver: RedisSessionSaver, r: redis.Redis) -> None:
    """Runs extend what they read, whoever else reads the thread (and keeps the result)."""
    graph = offline_graph(saver)
    config = thread_config("readers")
    kept: list[Any] = []
    for question in QUESTIONS[:5]:
        kept.append(await graph.ainvoke({"messages": [("user", question)]}, config))
        kept.append(await graph.aget_state(config))  # an API showing the conversation
        kept.append([s async for s in graph.aget_state_history(config, limit=3)])
    kept.append(await asyncio.to_thread(graph.invoke, {"messages": [("user", "ok")]}, config))
    assert message_pieces(r, "readers") == {"F": 1, "D": 21}


async def test_the_saver_keeps_no_conversation_alive(saver: RedisSessionSaver) -> None:
    graph = offline_graph(saver)
    config = thread_config("alive")
    state = await graph.ainvoke({"messages": [("user", "Weather in Rome?")]}, config)
    state = await graph.ainvoke({"messages": [("user", "and tomorrow?")]}, config)
    answer = weakref.ref(state["messages"][-1])
    del state
    gc.collect()
    assert answer() is None


async def test_stale_delta_base_falls_back_to_full_values(
    saver: RedisSessionSaver, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saver's memory of a list says nothing if the thread changed behind its back."""
    config: RunnableConfig = {"configurable": {"thread_id": "stale", "checkpoint_ns": ""}}
    first, second = HumanMessage("one", id="1"), HumanMessage("two", id="2")
    v1 = saver.get_next_version(None, None)
    stored = await saver.aput(
        config,
        checkpoint_of({"messages": [first]}, {"messages": v1}),
        metadata_of(),
        {"messages": v1},
    )
    r.delete(keys.thread("stale"))  # not through the saver: it still remembers [first]
    v2 = saver.get_next_version(v1, None)
    trips = RoundTrips(saver, monkeypatch)
    stored = await saver.aput(
        stored,
        checkpoint_of({"messages": [first, second]}, {"messages": v2}, step=2),
        metadata_of(2),
        {"messages": v2},
    )
    assert trips.take() == {"EVALSHA": 2}  # refused delta, then full values
    latest = await saver.aget_tuple(config)
    assert latest is not None
    assert dumped(latest.checkpoint["channel_values"]["messages"]) == dumped([first, second])


async def test_one_round_trip_per_call(
    saver: RedisSessionSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = offline_graph(saver)
    config = thread_config("trips")
    await graph.ainvoke({"messages": [("user", "What's the weather in London?")]}, config)
    trips = RoundTrips(saver, monkeypatch)

    # a turn with a tool call: 1 read, 5 checkpoints (the input, then one per super-step:
    # start, model, tools, model) and the writes of the 4 tasks: each one script
    await graph.ainvoke({"messages": [("user", "and tomorrow?")]}, config)
    assert trips.take() == {"EVALSHA": 10}
    await asyncio.to_thread(graph.invoke, {"messages": [("user", "in Fahrenheit")]}, config)
    assert trips.take() == {"EVALSHA": 10}

    latest = await saver.aget_tuple(config)
    assert latest is not None
    assert trips.take() == {"EVALSHA": 1}
    assert await asyncio.to_thread(saver.get_tuple, config) is not None
    assert trips.take() == {"EVALSHA": 1}
    await saver.aput_writes(latest.config, [("messages", [AIMessage("hi")])], "a-task")
    assert trips.take() == {"EVALSHA": 1}
    await asyncio.to_thread(saver.put_writes, latest.config, [("x", 1)], "b-task")
    assert trips.take() == {"EVALSHA": 1}


async def test_writes_before_their_checkpoint(saver: RedisSessionSaver) -> None:
    """LangGraph saves writes and checkpoints in the background: either may land first."""
    checkpoint = checkpoint_of({}, {})
    config: RunnableConfig = {
        "configurable": {
            "thread_id": "early",
            "checkpoint_ns": "",
            "checkpoint_id": checkpoint["id"],
        }
    }
    await saver.aput_writes(config, [("messages", [AIMessage("early")])], "t1", "~p")
    assert await saver.aget_tuple(config) is None
    assert [t async for t in saver.alist(thread_config("early"))] == []
    root: RunnableConfig = {"configurable": {"thread_id": "early", "checkpoint_ns": ""}}
    await saver.aput(root, checkpoint, metadata_of(), {})
    stored = await saver.aget_tuple(config)
    assert stored is not None
    assert stored.pending_writes is not None
    assert [(t, c, v[0].text) for t, c, v in stored.pending_writes] == [("t1", "messages", "early")]


@pytest.mark.parametrize("put_first", [False, True])
async def test_write_references_either_order(
    saver: RedisSessionSaver, r: redis.Redis, put_first: bool
) -> None:
    thread_id = f"order-{put_first}"
    root: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    question = HumanMessage("question " * 20, id="q")
    answer = AIMessage("answer " * 40, id="a")
    v1 = saver.get_next_version(None, None)
    parent = await saver.aput(
        root,
        checkpoint_of({"messages": [question]}, {"messages": v1}, step=1),
        metadata_of(1),
        {"messages": v1},
    )
    v2 = saver.get_next_version(v1, None)
    child = checkpoint_of({"messages": [question, answer]}, {"messages": v2}, step=2)
    if put_first:
        await saver.aput(parent, child, metadata_of(2), {"messages": v2})
        await saver.aput_writes(parent, [("messages", [answer])], "model-task", "~p")
    else:
        await saver.aput_writes(parent, [("messages", [answer])], "model-task", "~p")
        await saver.aput(parent, child, metadata_of(2), {"messages": v2})
    assert stored_write_kinds(r, thread_id) == {"V": 0, "R": 1}
    stored = await saver.aget_tuple(parent)
    assert stored is not None
    assert stored.pending_writes is not None
    ((task, channel, value),) = stored.pending_writes
    assert (task, channel) == ("model-task", "messages")
    assert dumped(value) == dumped([answer])


# --------------------------------------------------------------------------- delete, isolation


async def test_delete_thread_removes_everything(saver: RedisSessionSaver, r: redis.Redis) -> None:
    graph = offline_graph(saver)
    for thread_id in ("doomed", "doomed-sync", "kept"):
        await graph.ainvoke({"messages": [("user", "Weather in Lima?")]}, thread_config(thread_id))
    await saver.adelete_thread("doomed")
    await asyncio.to_thread(saver.delete_thread, "doomed-sync")
    for thread_id in ("doomed", "doomed-sync"):
        assert scan_thread(r, thread_id) == set()
        assert await saver.aget_tuple(thread_config(thread_id)) is None
        assert [t async for t in saver.alist(thread_config(thread_id))] == []
    assert await saver.aget_tuple(thread_config("kept")) is not None
    # a deleted thread starts afresh
    state = await graph.ainvoke({"messages": [("user", "Hi")]}, thread_config("doomed"))
    assert len(state["messages"]) == 2


async def test_threads_are_isolated(saver: RedisSessionSaver, r: redis.Redis) -> None:
    thread_ids = ["a", "ab", "a:b", "a}:{b", "a*", "b"]
    for thread_id in thread_ids:
        version = saver.get_next_version(None, None)
        await saver.aput(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}},
            checkpoint_of({"owner": thread_id}, {"owner": version}),
            metadata_of(),
            {"owner": version},
        )
    for thread_id in thread_ids:
        stored = await saver.aget_tuple(thread_config(thread_id))
        assert stored is not None
        assert stored.checkpoint["channel_values"] == {"owner": thread_id}
        listed = [t async for t in saver.alist(thread_config(thread_id))]
        assert [t.checkpoint["channel_values"]["owner"] for t in listed] == [thread_id]

    everything = [t async for t in saver.alist(None)]
    owners = sorted(t.checkpoint["channel_values"]["owner"] for t in everything)
    assert owners == sorted(thread_ids)
    assert all(
        t.config["configurable"]["thread_id"] == t.checkpoint["channel_values"]["owner"]
        for t in everything
    )
    assert len(list(saver.list(None, limit=2))) == 2

    await saver.adelete_thread("a")
    assert await saver.aget_tuple(thread_config("a")) is None
    for thread_id in thread_ids[1:]:
        assert await saver.aget_tuple(thread_config(thread_id)) is not None


# --------------------------------------------------------------------------- odds and ends


def test_versions_increase_as_strings() -> None:
    saver = RedisSessionSaver(sync_redis=redis.Redis())  # never connects
    versions: list[str] = []
    current: str | None = None
    for _ in range(1200):
        current = saver.get_next_version(current, None)
        versions.append(current)
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert versions[0].startswith("11.")
    assert versions[-1].startswith("41200.")
    assert saver.get_next_version(7, None).startswith("18.")  # type: ignore[arg-type]
    in_memory = InMemorySaver().get_next_version(None, None)
    assert saver.get_next_version(in_memory, None).startswith("12.")


async def test_needs_the_right_clients(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    async_only = RedisSessionSaver(client)
    with pytest.raises(RuntimeError, match="sync_redis"):
        async_only.get_tuple(thread_config("x"))
    await client.aclose()
    with pytest.raises(ValueError, match="decode_responses"):
        RedisSessionSaver(sync_redis=redis.Redis.from_url(redis_url, decode_responses=True))
