"""The session policy nodes inside the agent graph (in-memory checkpointer, fake clock)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.memory import InMemoryStore

from agent import build_graph
from agent.facts import extract_facts
from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather
from session_policy.models import SessionLimits
from session_policy.policy import SessionContext, SessionPolicy

T0 = 1_900_000_000_000
LIMITS = SessionLimits(duration_ms=60_000, inactivity_ms=20_000, max_conversations=3)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


Graph = CompiledStateGraph[Any, Any, Any, Any]


def make_graph(
    offline_model: OfflineChatModel,
    simulated_weather: SimulatedWeather,
    clock: Clock,
    on_expiry: Literal["handoff", "rollover"] = "handoff",
    store: InMemoryStore | None = None,
) -> Graph:
    policy = SessionPolicy(LIMITS, on_expiry=on_expiry, clock_ms=clock, extract_facts=extract_facts)
    return build_graph(
        InMemorySaver(),
        model=offline_model,
        weather=simulated_weather,
        policy=policy,
        store=store,
    )


def ask(graph: Graph, text: str, thread: str = "t", user: str = "alice") -> dict[str, Any]:
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    context = SessionContext(user_id=user)
    state: dict[str, Any] = graph.invoke({"messages": [("user", text)]}, config, context=context)
    return state


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_first_turn_starts_the_session_record(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    state = ask(make_graph(offline_model, simulated_weather, clock), "hi")
    assert state["session"] == {
        "session_id": "t",
        "user_id": "alice",
        "started_at": T0,
        "last_activity": T0,
        "conversation_count": 1,
        "status": "active",
        "end_reason": None,
        "answered": True,
    }


def test_conversation_limit_ends_after_the_reply(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    graph = make_graph(offline_model, simulated_weather, clock)
    ask(graph, "hi")
    ask(graph, "Weather in Rome?")
    third = ask(graph, "thanks")
    assert third["messages"][-1].text.startswith("You're welcome")  # delivered
    assert third["session"]["status"] == "ended"
    assert third["session"]["end_reason"] == "conversation_limit"
    fourth = ask(graph, "hello again")  # handoff: unanswered, for a new session
    assert fourth["session"]["answered"] is False
    assert fourth["messages"][-1].type == "human"


def test_inactivity_ends_the_session(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    graph = make_graph(offline_model, simulated_weather, clock)
    ask(graph, "hi")
    clock.now += 19_999
    assert ask(graph, "still there?")["session"]["status"] == "active"
    clock.now += 20_000
    state = ask(graph, "and now?")
    assert state["session"]["status"] == "ended"
    assert state["session"]["end_reason"] == "inactivity"
    assert state["session"]["answered"] is False


def test_duration_counts_from_the_start_whatever_the_activity(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    policy = SessionPolicy(
        SessionLimits(duration_ms=60_000, inactivity_ms=20_000, max_conversations=100),
        clock_ms=clock,
    )
    graph = build_graph(
        InMemorySaver(), model=offline_model, weather=simulated_weather, policy=policy
    )
    for _ in range(4):  # active every 15 s: never inactive
        assert ask(graph, "hi")["session"]["status"] == "active"
        clock.now += 15_000
    state = ask(graph, "hi")  # 60 s after the start
    assert (state["session"]["end_reason"], state["session"]["answered"]) == ("duration", False)


def test_rollover_answers_in_a_fresh_session_of_the_same_thread(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    graph = make_graph(offline_model, simulated_weather, clock, on_expiry="rollover")
    ask(graph, "I'm Alice")
    clock.now += 30_000
    state = ask(graph, "what's my name?")
    assert state["session"]["session_id"] == f"t/{clock.now}"
    assert state["session"]["conversation_count"] == 1
    assert [m.type for m in state["messages"]] == ["human", "ai"]  # old conversation gone
    assert "don't know your name" in state["messages"][-1].text


def test_user_facts_outlive_the_session(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    store = InMemoryStore()
    graph = make_graph(offline_model, simulated_weather, clock, store=store)
    ask(graph, "I'm Alice", thread="s1")
    ask(graph, "weather in Oslo in Fahrenheit", thread="s1")
    item = store.get(("users", "alice"), "facts")
    assert item is not None
    assert (item.value["name"], item.value["units"]) == ("Alice", "imperial")

    assert ask(graph, "what's my name?", thread="s2")["messages"][-1].text == "Your name is Alice."
    assert "°F" in ask(graph, "weather in Rome", thread="s2")["messages"][-1].text
    assert (
        "don't know your name"
        in ask(graph, "what's my name?", thread="s3", user="bob")["messages"][-1].text
    )


def test_user_facts_expire(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    store = InMemoryStore()
    graph = make_graph(offline_model, simulated_weather, clock, store=store)
    ask(graph, "I'm Alice", thread="s1")
    clock.now += 3600 * 1000  # USER_MEMORY_TTL (default 1 h) later
    assert "don't know your name" in ask(graph, "what's my name?", thread="s2")["messages"][-1].text


def test_the_first_deadline_names_the_reason(
    offline_model: OfflineChatModel, simulated_weather: SimulatedWeather, clock: Clock
) -> None:
    """A user who went quiet and came back after the duration too: ended by inactivity."""
    graph = make_graph(offline_model, simulated_weather, clock)
    ask(graph, "hi")
    clock.now += 24 * 3600 * 1000
    assert ask(graph, "hello")["session"]["end_reason"] == "inactivity"
