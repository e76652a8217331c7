"""`RedisSessionSaver` on a real Redis, as the service builds it (guarded, latest checkpoint
only): LangGraph's conformance suite, the agent graph, the session guard, memory growth,
failed turns, several processes, deletion and isolation of threads.

Every thread here belongs to a session: its meta hash exists (`start_session`), as
`RedisSessionStore` writes it when a session starts. Run with `-s` to see the memory numbers.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Literal

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
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.conformance.spec import (
    test_delete_thread,
    test_get_tuple,
    test_list,
    test_put,
    test_put_writes,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from agent import build_graph
from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather
from session_policy import keys
from session_policy.checkpointer import RedisSessionSaver
from tests.conftest import fixed_clock

pytestmark = pytest.mark.integration

Graph = CompiledStateGraph[Any, Any, Any, Any]
Durability = Literal["exit", "async"]

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
HOUR_MS = 3_600_000


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


def now_ms() -> int:
    return int(time.time() * 1000)


def start_session(client: redis.Redis, thread_id: str, keep_until_ms: int | None = None) -> int:
    """The session's meta hash with its keep-until, as `RedisSessionStore` starts a session."""
    keep = now_ms() + HOUR_MS if keep_until_ms is None else keep_until_ms
    client.hset(keys.session_meta(thread_id), keys.KEEP_UNTIL_FIELD, keep)
    return keep


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
def saver(client: aioredis.Redis) -> RedisSessionSaver:
    """The saver as `Storage` builds it."""
    return RedisSessionSaver(client)


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


class RoundTrips:
    """Counts the commands a saver sends, by name: each one is a round trip."""

    def __init__(self, saver: RedisSessionSaver, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        send: Callable[..., Awaitable[Any]] = saver.redis.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            self.calls[str(args[0]).upper()] += 1
            return await send(*args, **options)

        monkeypatch.setattr(saver.redis, "execute_command", counted)

    def take(self) -> dict[str, int]:
        calls = dict(self.calls)
        self.calls.clear()
        return calls


# --------------------------------------------------------------------------- conformance


class SessionsStarted(RedisSessionSaver):
    """The saver with the guard satisfied, as the session store does before a turn: every
    thread's session is started (its meta hash written) before the thread is written."""

    async def _start(self, config: RunnableConfig) -> None:
        meta = keys.session_meta(config["configurable"]["thread_id"])
        await self.redis.hset(meta, keys.KEEP_UNTIL_FIELD, now_ms() + HOUR_MS)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await self._start(config)
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._start(config)
        await super().aput_writes(config, writes, task_id, task_path)


class ThroughSyncMethods(BaseCheckpointSaver[str]):
    """The async API answered by a saver's sync methods, called from a worker thread as
    LangGraph calls them (sync nodes, `graph.invoke` in a thread)."""

    def __init__(self, saver: RedisSessionSaver) -> None:
        super().__init__(serde=saver.serde)
        self.saver = saver

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.saver.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        def listed() -> list[CheckpointTuple]:
            return list(self.saver.list(config, filter=filter, before=before, limit=limit))

        for item in await asyncio.to_thread(listed):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.saver.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.saver.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.saver.delete_thread, thread_id)


SUITES: dict[str, Sequence[Callable[[BaseCheckpointSaver[Any]], Awaitable[None]]]] = {
    "put": test_put.ALL_PUT_TESTS,
    "put_writes": test_put_writes.ALL_PUT_WRITES_TESTS,
    "get_tuple": test_get_tuple.ALL_GET_TUPLE_TESTS,
    "list": test_list.ALL_LIST_TESTS,
    "delete_thread": test_delete_thread.ALL_DELETE_THREAD_TESTS,
}
LATEST_ONLY = "needs more than the latest checkpoint of a thread (several checkpoints, history)"
NEEDS_HISTORY = {
    "test_put_multiple_checkpoints_same_thread",
    "test_put_incremental_channel_update",  # reads the first checkpoint back after the second
    "test_get_tuple_specific_checkpoint_id",
    "test_list_all",
    "test_list_by_thread",
    "test_list_ordering",
    "test_list_metadata_filter_single_key",
    "test_list_metadata_filter_step",
    "test_list_metadata_custom_keys",
    "test_list_before",
    "test_list_limit",
    "test_list_limit_plus_before",
    "test_list_combined_thread_and_filter",
}
CONFORMANCE = [
    pytest.param(
        test,
        id=f"{capability}-{test.__name__}",
        marks=[pytest.mark.xfail(reason=LATEST_ONLY, strict=True)]
        if test.__name__ in NEEDS_HISTORY
        else [],
    )
    for capability, tests in SUITES.items()
    for test in tests
]


def test_every_expected_failure_names_a_conformance_test() -> None:
    names = {test.__name__ for tests in SUITES.values() for test in tests}
    assert names >= NEEDS_HISTORY


@pytest.mark.parametrize("api", ["async", "sync"])
@pytest.mark.parametrize("conformance_test", CONFORMANCE)
async def test_conformance(
    client: aioredis.Redis,
    api: str,
    conformance_test: Callable[[BaseCheckpointSaver[Any]], Awaitable[None]],
) -> None:
    """LangGraph's checkpointer conformance suite (its base capabilities), test by test, on
    the production saver; "sync": through its sync methods, from a worker thread."""
    saver = SessionsStarted(client)
    await conformance_test(saver if api == "async" else ThroughSyncMethods(saver))


# --------------------------------------------------------------------------- the agent graph


@pytest.mark.parametrize("durability", ["exit", "async"])
async def test_async_conversation_matches_in_memory_saver(
    saver: RedisSessionSaver, client: aioredis.Redis, r: redis.Redis, durability: Durability
) -> None:
    start_session(r, "async-thread")
    memory_graph, redis_graph = offline_graph(InMemorySaver()), offline_graph(saver)
    config = thread_config("async-thread")
    for question in QUESTIONS:
        turn = {"messages": [("user", question)]}
        expected = await memory_graph.ainvoke(turn, config, durability=durability)
        got = await redis_graph.ainvoke(turn, config, durability=durability)
        assert shape(got["messages"]) == shape(expected["messages"])
    assert "Madrid" in got["messages"][-1].text

    # another process reads back exactly the same messages, ids included
    state = await offline_graph(RedisSessionSaver(client)).aget_state(config)
    assert dumped(state.values["messages"]) == dumped(got["messages"])
    assert state.next == ()


async def test_sync_conversation_matches_in_memory_saver(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    start_session(r, "sync-thread")
    memory_graph, redis_graph = offline_graph(InMemorySaver()), offline_graph(saver)
    config = thread_config("sync-thread")
    await redis_graph.aget_state(config)  # binds the saver to this loop, as a server does
    for question in QUESTIONS[:6]:
        turn = {"messages": [("user", question)]}
        expected = memory_graph.invoke(turn, config)
        got = await asyncio.to_thread(redis_graph.invoke, turn, config)
        assert shape(got["messages"]) == shape(expected["messages"])
    state = await asyncio.to_thread(redis_graph.get_state, config)
    assert dumped(state.values["messages"]) == dumped(got["messages"])

    # the same thread goes on with the async API
    follow_up = {"messages": [("user", "and tomorrow?")]}
    expected = await memory_graph.ainvoke(follow_up, config)
    got = await redis_graph.ainvoke(follow_up, config)
    assert shape(got["messages"]) == shape(expected["messages"])
    assert got["messages"][-1].text.startswith("Tomorrow in New York")


async def test_stream_messages(saver: RedisSessionSaver, r: redis.Redis) -> None:
    start_session(r, "stream-thread")
    graph = offline_graph(saver)
    config = thread_config("stream-thread")
    await graph.ainvoke({"messages": [("user", "Weather in Madrid?")]}, config, durability="exit")
    tokens: list[str] = []
    async for chunk, metadata in graph.astream(
        {"messages": [("user", "and tomorrow?")]},
        config,
        stream_mode="messages",
        durability="exit",
    ):
        assert isinstance(metadata, dict)
        if isinstance(chunk, AIMessageChunk) and metadata["langgraph_node"] == "model":
            tokens.append(chunk.text)
    answer = "".join(tokens)
    assert answer.startswith("Tomorrow in Madrid, Spain")
    state = await graph.aget_state(config)
    assert state.values["messages"][-1].text == answer
    assert len(state.values["messages"]) == 8


async def test_a_turn_stores_one_checkpoint_and_no_writes(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    """At durability "exit", a turn leaves one checkpoint in its thread, whatever came before."""
    start_session(r, "one-checkpoint")
    graph = offline_graph(saver)
    config = thread_config("one-checkpoint")
    for question in QUESTIONS[:4]:
        await graph.ainvoke({"messages": [("user", question)]}, config, durability="exit")
        assert r.hkeys(keys.thread("one-checkpoint")) == [b"c\0"]
    # a run at LangGraph's default durability stores writes on the way; the next turn's
    # checkpoint drops them
    await graph.ainvoke({"messages": [("user", "Hi")]}, config)
    await graph.ainvoke({"messages": [("user", "and tomorrow?")]}, config, durability="exit")
    assert r.hkeys(keys.thread("one-checkpoint")) == [b"c\0"]


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


@pytest.mark.parametrize("durability", ["exit", "async"])
async def test_interrupts_subgraphs_edits_and_removals(
    saver: RedisSessionSaver, r: redis.Redis, durability: Durability
) -> None:
    """Beyond appending: an interrupt resumed, replaced and removed messages, a subgraph."""
    start_session(r, "interrupts")

    async def run(graph: Graph) -> list[Any]:
        config = thread_config("interrupts")
        seen: list[Any] = []
        for turn in range(3):
            asked = await graph.ainvoke(
                {"messages": [HumanMessage(f"hi {turn}")]}, config, durability=durability
            )
            seen.append([i.value for i in asked["__interrupt__"]])
            state = await graph.aget_state(config, subgraphs=True)
            seen.append([task.state is not None for task in state.tasks])
            answered = await graph.ainvoke(
                Command(resume=f"bob {turn}"), config, durability=durability
            )
            seen.append(shape(answered["messages"]))
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


async def test_a_failed_turn_leaves_the_thread_as_it_was(
    saver: RedisSessionSaver, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis goes away when the turn is stored: nothing of it is, and the next turn goes on
    from the one before. (The agent's nodes never raise: their failures are answers.)"""
    start_session(r, "failing")
    graph, reference = offline_graph(saver), offline_graph(InMemorySaver())
    config = thread_config("failing")
    for question in QUESTIONS[:2]:
        for g in (graph, reference):
            await g.ainvoke({"messages": [("user", question)]}, config, durability="exit")
    before = r.hgetall(keys.thread("failing"))

    async def gone(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("Redis went away")

    with monkeypatch.context() as patched:
        patched.setattr(saver, "_put", gone)
        with pytest.raises(redis.ConnectionError, match="went away"):
            await graph.ainvoke(
                {"messages": [("user", "what about Paris?")]}, config, durability="exit"
            )
    assert r.hgetall(keys.thread("failing")) == before

    turn = {"messages": [("user", QUESTIONS[2])]}
    answer = await graph.ainvoke(turn, config, durability="exit")
    expected = await reference.ainvoke(turn, config, durability="exit")
    assert shape(answer["messages"]) == shape(expected["messages"])


async def test_two_processes_taking_turns_see_each_others_turns(
    client: aioredis.Redis, redis_url: str, r: redis.Redis
) -> None:
    start_session(r, "shared")
    other_client = aioredis.Redis.from_url(redis_url)
    try:
        graphs = [offline_graph(RedisSessionSaver(c)) for c in (client, other_client)]
        reference = offline_graph(InMemorySaver())
        config = thread_config("shared")
        for i, question in enumerate(QUESTIONS[:6]):
            turn = {"messages": [("user", question)]}
            answer = await graphs[i % 2].ainvoke(turn, config, durability="exit")
            expected = await reference.ainvoke(turn, config, durability="exit")
            assert shape(answer["messages"]) == shape(expected["messages"]), question
    finally:
        await other_client.aclose()


async def test_what_a_reader_changes_does_not_reach_the_next_read(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    start_session(r, "isolated-reads")
    config = thread_config("isolated-reads")
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
    first.checkpoint["channel_values"]["messages"][0].content = "edited in place"
    second = await saver.aget_tuple(config)
    assert second is not None
    assert "extra" not in second.checkpoint["channel_values"]
    assert (
        len(second.checkpoint["channel_values"]["messages"]),
        second.checkpoint["channel_versions"],
        second.checkpoint["versions_seen"],
    ) == before
    assert second.checkpoint["channel_values"]["messages"][0].text == "Hi"


async def test_what_a_writer_changes_after_saving_is_not_saved(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    """A message edited in place after its checkpoint was saved: the stored one is the saved
    one (the old saver's delta encoding silently kept edits of this kind out, and in)."""
    start_session(r, "isolated-writes")
    config: RunnableConfig = {"configurable": {"thread_id": "isolated-writes", "checkpoint_ns": ""}}
    message = HumanMessage("as saved", id="m1")
    checkpoint = checkpoint_of({"messages": [message]}, {"messages": 1})
    await saver.aput(config, checkpoint, metadata_of(), {"messages": 1})
    message.content = "edited later"
    checkpoint["channel_values"]["messages"].append(HumanMessage("appended later"))
    stored = await saver.aget_tuple(config)
    assert stored is not None
    assert [m.text for m in stored.checkpoint["channel_values"]["messages"]] == ["as saved"]

    # and an edit saved with the next checkpoint is stored, even on the same object
    message.content = "edited and saved"
    edited = checkpoint_of({"messages": [message]}, {"messages": 2}, step=1)
    await saver.aput(stored.config, edited, metadata_of(1), {"messages": 2})
    latest = await saver.aget_tuple(config)
    assert latest is not None
    assert [m.text for m in latest.checkpoint["channel_values"]["messages"]] == ["edited and saved"]


async def test_the_saver_keeps_no_conversation_alive(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    start_session(r, "alive")
    graph = offline_graph(saver)
    config = thread_config("alive")
    state = await graph.ainvoke({"messages": [("user", "Weather in Rome?")]}, config)
    state = await graph.ainvoke({"messages": [("user", "and tomorrow?")]}, config)
    answer = weakref.ref(state["messages"][-1])
    del state
    gc.collect()
    assert answer() is None


# --------------------------------------------------------------------------- the guard


def scan_thread(client: redis.Redis, thread_id: str) -> set[bytes]:
    return set(client.scan_iter(match=f"*{thread_id}*", count=1000))


async def test_guarded_run_keeps_one_key_that_expires_with_the_session(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    thread_id = "session:alice:1764072000000"
    meta, thread = keys.session_meta(thread_id), keys.thread(thread_id)
    expires_at = start_session(r, thread_id, now_ms() + 60_000)
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
    late["channel_versions"] = {"messages": 99}
    late["channel_values"] = {"messages": [HumanMessage("late", id="late")]}
    returned = await saver.aput(latest.config, late, metadata_of(99), {"messages": 99})
    assert returned["configurable"]["checkpoint_id"] == late["id"]
    await saver.aput_writes(latest.config, [("messages", [AIMessage("late")])], "task-1")
    await asyncio.to_thread(
        saver.put_writes, latest.config, [("messages", [AIMessage("late")])], "task-2"
    )
    answer = await graph.ainvoke({"messages": [("user", "Weather in Rome?")]}, config)
    assert "Rome" in answer["messages"][-1].text  # the turn answers, nothing is saved
    assert scan_thread(r, thread_id) == set()
    assert await saver.aget_tuple(config) is None


async def test_past_deadline_deletes_the_thread(saver: RedisSessionSaver, r: redis.Redis) -> None:
    thread_id = "session:bob:1764072000000"
    start_session(r, thread_id, now_ms() - 1)
    await offline_graph(saver).ainvoke(
        {"messages": [("user", "Weather in Oslo?")]}, thread_config(thread_id)
    )
    assert r.exists(keys.thread(thread_id)) == 0
    assert scan_thread(r, thread_id) == {keys.session_meta(thread_id).encode()}


async def test_guard_without_deadline_writes_and_warns(
    saver: RedisSessionSaver, r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    thread_id = "session:carol:1764072000000"
    r.hset(keys.session_meta(thread_id), "userId", "carol")
    with caplog.at_level(logging.WARNING, logger="session_policy.checkpointer"):
        await offline_graph(saver).ainvoke(
            {"messages": [("user", "Weather in Oslo?")]}, thread_config(thread_id)
        )
    assert r.pttl(keys.thread(thread_id)) == -1
    assert any(keys.KEEP_UNTIL_FIELD in record.getMessage() for record in caplog.records)


async def test_no_session_no_thread(saver: RedisSessionSaver, r: redis.Redis) -> None:
    await offline_graph(saver).ainvoke({"messages": [("user", "Hi")]}, thread_config("nobody"))
    assert scan_thread(r, "nobody") == set()
    assert await saver.aget_tuple(thread_config("nobody")) is None


# --------------------------------------------------------------------------- memory


async def test_memory_grows_linearly_and_stays_close_to_the_messages(
    saver: RedisSessionSaver, r: redis.Redis
) -> None:
    thread_id = "memory-thread"
    start_session(r, thread_id)
    graph = offline_graph(saver)
    config = thread_config(thread_id)
    memory: dict[int, int] = {}
    for turn in range(1, 41):
        state = await graph.ainvoke(
            {"messages": [("user", QUESTIONS[(turn - 1) % 10])]}, config, durability="exit"
        )
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


async def test_one_round_trip_per_call(
    saver: RedisSessionSaver, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_session(r, "trips")
    graph = offline_graph(saver)
    config = thread_config("trips")
    await graph.ainvoke({"messages": [("user", "What's the weather in London?")]}, config)
    trips = RoundTrips(saver, monkeypatch)

    # a turn as the service runs it: one read, one checkpoint
    await graph.ainvoke({"messages": [("user", "and tomorrow?")]}, config, durability="exit")
    assert trips.take() == {"HGETALL": 1, "EVALSHA": 1}
    await asyncio.to_thread(
        graph.invoke, {"messages": [("user", "in Fahrenheit")]}, config, durability="exit"
    )
    assert trips.take() == {"HGETALL": 1, "EVALSHA": 1}

    latest = await saver.aget_tuple(config)
    assert latest is not None
    assert trips.take() == {"HGETALL": 1}
    assert await asyncio.to_thread(saver.get_tuple, config) is not None
    assert trips.take() == {"HGETALL": 1}
    await saver.aput_writes(latest.config, [("messages", [AIMessage("hi")])], "a-task")
    assert trips.take() == {"EVALSHA": 1}
    await asyncio.to_thread(saver.put_writes, latest.config, [("x", 1)], "b-task")
    assert trips.take() == {"EVALSHA": 1}


async def test_writes_before_their_checkpoint(saver: RedisSessionSaver, r: redis.Redis) -> None:
    """LangGraph saves writes and checkpoints in the background: either may land first."""
    start_session(r, "early")
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


async def test_writes_stored_after_the_checkpoint_are_read(
    saver: RedisSessionSaver, client: aioredis.Redis, r: redis.Redis
) -> None:
    start_session(r, "later-writes")
    config = thread_config("later-writes")
    await offline_graph(saver).ainvoke({"messages": [("user", "Hi")]}, config, durability="exit")
    latest = await saver.aget_tuple(config)
    assert latest is not None
    assert latest.pending_writes == []
    # another process stores a task's writes against that checkpoint
    other = RedisSessionSaver(client)
    await other.aput_writes(latest.config, [("messages", [AIMessage("pending")])], "task-1")
    again = await saver.aget_tuple(config)
    assert again is not None
    assert again.pending_writes is not None
    assert [(task, channel) for task, channel, _ in again.pending_writes] == [
        ("task-1", "messages")
    ]


# --------------------------------------------------------------------------- delete, isolation


async def test_delete_thread_removes_everything(saver: RedisSessionSaver, r: redis.Redis) -> None:
    graph = offline_graph(saver)
    for thread_id in ("doomed", "doomed-sync", "kept"):
        start_session(r, thread_id)
        await graph.ainvoke({"messages": [("user", "Weather in Lima?")]}, thread_config(thread_id))
    await saver.adelete_thread("doomed")
    await asyncio.to_thread(saver.delete_thread, "doomed-sync")
    for thread_id in ("doomed", "doomed-sync"):
        # nothing is left but the session meta hashes this test wrote
        assert {k for k in scan_thread(r, thread_id) if not k.endswith(b":meta")} == set()
        assert await saver.aget_tuple(thread_config(thread_id)) is None
        assert [t async for t in saver.alist(thread_config(thread_id))] == []
    assert await saver.aget_tuple(thread_config("kept")) is not None
    # a deleted thread starts afresh
    state = await graph.ainvoke({"messages": [("user", "Hi")]}, thread_config("doomed"))
    assert len(state["messages"]) == 2


async def test_an_ended_session_reads_as_empty(saver: RedisSessionSaver, r: redis.Redis) -> None:
    thread_id = "session:alice:1764072000000"
    start_session(r, thread_id)
    config = thread_config(thread_id)
    await offline_graph(saver).ainvoke({"messages": [("user", "Hi")]}, config, durability="exit")
    assert await saver.aget_tuple(config) is not None
    r.delete(keys.session_meta(thread_id), keys.thread(thread_id))  # as ending the session does
    assert await saver.aget_tuple(config) is None
    assert await asyncio.to_thread(saver.get_tuple, config) is None


async def test_threads_are_isolated(saver: RedisSessionSaver, r: redis.Redis) -> None:
    thread_ids = ["a", "ab", "a:b", "a}:{b", "a*", "b"]
    for thread_id in thread_ids:
        start_session(r, thread_id)
        await saver.aput(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}},
            checkpoint_of({"owner": thread_id}, {"owner": 1}),
            metadata_of(),
            {"owner": 1},
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
    assert len(await asyncio.to_thread(lambda: list(saver.list(None, limit=2)))) == 2

    await saver.adelete_thread("a")
    assert await saver.aget_tuple(thread_config("a")) is None
    for thread_id in thread_ids[1:]:
        assert await saver.aget_tuple(thread_config(thread_id)) is not None


# --------------------------------------------------------------------------- odds and ends


async def test_sync_methods_are_for_other_threads(saver: RedisSessionSaver, redis_url: str) -> None:
    with pytest.raises(asyncio.InvalidStateError, match="async ones"):
        saver.get_tuple(thread_config("x"))
    with pytest.raises(ValueError, match="decode_responses"):
        RedisSessionSaver(aioredis.Redis.from_url(redis_url, decode_responses=True))
