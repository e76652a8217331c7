"""The weather agent end to end, offline: model, tools, routing and memory of a thread."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph

from agent import AgentSettings, build_graph
from agent.models import OfflineChatModel
from agent.weather import Forecast, Place, SimulatedWeather, Units

Graph = CompiledStateGraph[Any, Any, Any, Any]


@pytest.fixture
def graph(offline_model: OfflineChatModel, simulated_weather: SimulatedWeather) -> Graph:
    return build_graph(InMemorySaver(), model=offline_model, weather=simulated_weather)


def ask(graph: Graph, text: str, thread: str = "t1") -> str:
    state = graph.invoke({"messages": [("user", text)]}, {"configurable": {"thread_id": thread}})
    last: BaseMessage = state["messages"][-1]
    assert isinstance(last, AIMessage)
    return last.text


def test_weather_in_london_then_tomorrow(graph: Graph) -> None:
    answer = ask(graph, "What's the weather in London?")
    assert "London" in answer
    assert re.search(r"-?\d+(\.\d)?°C", answer), answer
    assert "Simulated weather" in answer

    follow_up = ask(graph, "and tomorrow?")
    assert follow_up.startswith("Tomorrow in London")
    assert re.search(r"-?\d+(\.\d)?°C to -?\d+(\.\d)?°C", follow_up), follow_up


async def test_async_and_sync_give_the_same_answers(
    graph: Graph, offline_model: OfflineChatModel, simulated_weather: SimulatedWeather
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "async"}}
    state = await graph.ainvoke({"messages": [("user", "Weather in Tokyo?")]}, config)
    assert state["messages"][-1].text == ask(graph, "Weather in Tokyo?", thread="sync")


def test_the_thread_remembers(graph: Graph) -> None:
    ask(graph, "Hi, I'm Alice")
    ask(graph, "What's the weather in Paris?")
    assert ask(graph, "what's my name?") == "Your name is Alice."
    assert "don't know your name" in ask(graph, "what's my name?", thread="other")


def test_follow_ups(graph: Graph) -> None:
    ask(graph, "Weather in Berlin tomorrow?")
    paris = ask(graph, "what about Paris?")
    assert paris.startswith("Tomorrow in Paris, France")
    fahrenheit = ask(graph, "in Fahrenheit")
    assert "Paris" in fahrenheit
    assert "°F" in fahrenheit
    assert "°C" not in fahrenheit


def test_forecasts(graph: Graph) -> None:
    weekend = ask(graph, "Tokyo weather this weekend")
    assert "Saturday 28 Nov" in weekend
    assert "Sunday 29 Nov" in weekend
    three = ask(graph, "next 3 days in New York", thread="ny")
    assert three.count("\n- ") == 3
    assert "New York" in three


def test_unknown_place_and_off_topic(graph: Graph) -> None:
    assert "couldn't find a place called 'Xyzzyville'" in ask(graph, "Weather in Xyzzyville?")
    assert "weather assistant" in ask(graph, "Tell me a joke")
    assert "Which place" in ask(graph, "weather?", thread="fresh")


def test_the_loop_runs_the_tool(graph: Graph) -> None:
    state = graph.invoke(
        {"messages": [("user", "Weather in Rome?")]}, {"configurable": {"thread_id": "loop"}}
    )
    kinds = [type(m).__name__ for m in state["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    tool_message = state["messages"][2]
    assert isinstance(tool_message, ToolMessage)
    assert '"location": "Rome, Italy"' in tool_message.text


async def test_answer_streams_token_by_token(graph: Graph) -> None:
    tokens: list[str] = []
    async for chunk, metadata in graph.astream(
        {"messages": [("user", "Weather in Madrid?")]},
        {"configurable": {"thread_id": "stream"}},
        stream_mode="messages",
    ):
        assert isinstance(metadata, dict)
        if isinstance(chunk, AIMessageChunk) and metadata["langgraph_node"] == "model":
            tokens.append(chunk.text)
    text_tokens = [t for t in tokens if t]
    assert len(text_tokens) > 10
    assert "".join(text_tokens).startswith("Right now in Madrid, Spain")


class BrokenWeather(SimulatedWeather):
    """A source whose forecast blows up in an unexpected way."""

    def forecast(self, place: Place, units: Units, days: int) -> Forecast:
        raise RuntimeError("disk on fire")

    async def aforecast(self, place: Place, units: Units, days: int) -> Forecast:
        raise RuntimeError("disk on fire")


async def test_tool_failure_is_a_sentence(offline_model: OfflineChatModel) -> None:
    graph = build_graph(model=offline_model, weather=BrokenWeather())
    for state in (
        graph.invoke({"messages": [("user", "Weather in Rome?")]}),
        await graph.ainvoke({"messages": [("user", "Weather in Rome?")]}),
    ):
        answer = state["messages"][-1].text
        assert answer.startswith("Sorry, the weather lookup failed unexpectedly")
        assert "disk on fire" in answer


class BrokenModel(OfflineChatModel):
    def reply(self, messages: Any, tool_names: Any = ()) -> AIMessage:
        raise ConnectionError("model server down")


async def test_model_failure_is_a_sentence(simulated_weather: SimulatedWeather) -> None:
    graph = build_graph(model=BrokenModel(), weather=simulated_weather)
    for state in (
        graph.invoke({"messages": [("user", "hi")]}),
        await graph.ainvoke({"messages": [("user", "hi")]}),
    ):
        answer = state["messages"][-1].text
        assert "couldn't reach the language model" in answer
        assert "ConnectionError" in answer


def test_settings_choose_model_and_source() -> None:
    graph = build_graph(settings=AgentSettings(model="offline", weather_provider="simulated"))
    state = graph.invoke({"messages": [("user", "Weather in Lima?")]})
    assert "Lima, Peru" in state["messages"][-1].text


def test_langgraph_json_names_a_graph_factory() -> None:
    import json
    from importlib import import_module
    from pathlib import Path

    config = json.loads((Path(__file__).parents[2] / "langgraph.json").read_text())
    path, _, attribute = config["graphs"]["weather_agent"].partition(":")
    module = import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
    exported = getattr(module, attribute)()
    assert isinstance(exported, CompiledStateGraph)
    assert exported.checkpointer is None
    assert {"session_gate", "model", "tools", "session_close"} <= set(exported.nodes)
