"""The whole agent on Open-Meteo: offline model, real tools and client, recorded answers.

respx plays Open-Meteo (nothing goes over the network). The fake endpoints answer like
the real API: geocoding from the recorded London results, the forecast from the
recording for the requested units, cut to the `forecast_days` asked for.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

import httpx
import pytest
import respx
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph

from agent import AgentSettings, build_graph
from agent.models import OfflineChatModel
from agent.weather import OpenMeteoWeather
from agent.weather.auto import FALLBACK_NOTE

Graph = CompiledStateGraph[Any, Any, Any, Any]
Flavour = Literal["sync", "async"]


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    value: Flavour = request.param
    return value


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment where only the variables a test sets choose the weather source."""
    for name in ("OPEN_METEO_GEOCODING_URL", "OPEN_METEO_FORECAST_URL", "OPEN_METEO_RETRY_AFTER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def run(graph: Graph, flavour: Flavour, text: str, thread: str = "t1") -> list[BaseMessage]:
    """One user turn; the messages it added (tool results and the answer)."""
    config: Any = {"configurable": {"thread_id": thread}}
    before = len(graph.get_state(config).values.get("messages", []))
    turn = {"messages": [("user", text)]}
    if flavour == "sync":
        state = graph.invoke(turn, config)
    else:
        state = await graph.ainvoke(turn, config)
    messages: list[BaseMessage] = state["messages"][before:]
    return messages


async def ask(graph: Graph, flavour: Flavour, text: str, thread: str = "t1") -> str:
    last = (await run(graph, flavour, text, thread))[-1]
    assert isinstance(last, AIMessage)
    assert not last.tool_calls
    return last.text


def open_meteo_graph(model: OfflineChatModel) -> Graph:
    return build_graph(InMemorySaver(), model=model, weather=OpenMeteoWeather())


async def test_weather_in_london_now_and_tomorrow(
    api: respx.MockRouter, offline_model: OfflineChatModel, flavour: Flavour
) -> None:
    graph = open_meteo_graph(offline_model)

    now = await ask(graph, flavour, "What's the weather in London?")

    assert now.startswith("Right now in London, England, United Kingdom it's 14.2°C")
    for recorded in ("feels like 12.6°C", "overcast", "wind 13.7 km/h", "humidity 71%"):
        assert recorded in now
    assert "simulated" not in now.lower()
    assert dict(api["geocoding"].calls.last.request.url.params)["name"] == "London"
    assert api["forecast"].calls.last.request.url.params["forecast_days"] == "1"

    tomorrow = await ask(graph, flavour, "and tomorrow?")

    assert tomorrow.startswith("Tomorrow in London, England, United Kingdom: slight rain")
    for recorded in ("10.2°C to 13.8°C", "78% chance of precipitation", "wind up to 24.8 km/h"):
        assert recorded in tomorrow
    assert api["forecast"].calls.last.request.url.params["forecast_days"] == "2"
    assert api["forecast"].call_count == 2


async def test_the_tool_result_is_the_recorded_forecast(
    api: respx.MockRouter, offline_model: OfflineChatModel, flavour: Flavour
) -> None:
    graph = open_meteo_graph(offline_model)

    messages = await run(graph, flavour, "What's the weather in London in Fahrenheit?")

    [tool_message] = [m for m in messages if isinstance(m, ToolMessage)]
    result = json.loads(tool_message.text)
    assert result == {
        "location": "London, England, United Kingdom",
        "local_time": "2025-10-14T15:45",
        "units": "imperial",
        "temperature": "57.6°F",
        "feels_like": "54.7°F",
        "conditions": "overcast",
        "humidity": "71%",
        "wind": "8.5 mph",
        "source": "open-meteo",
        "simulated": False,
    }
    assert api["forecast"].calls.last.request.url.params["temperature_unit"] == "fahrenheit"


async def test_weather_provider_open_meteo_from_the_environment(
    api: respx.MockRouter,
    offline_model: OfflineChatModel,
    flavour: Flavour,
    provider_env: pytest.MonkeyPatch,
) -> None:
    provider_env.setenv("WEATHER_PROVIDER", "open-meteo")
    graph = build_graph(InMemorySaver(), model=offline_model, settings=AgentSettings())

    answer = await ask(graph, flavour, "What's the weather in London?")

    assert "London, England, United Kingdom it's 14.2°C" in answer
    assert api["geocoding"].called


async def test_an_unknown_place_is_answered_in_words(
    api: respx.MockRouter, offline_model: OfflineChatModel, flavour: Flavour
) -> None:
    graph = open_meteo_graph(offline_model)

    answer = await ask(graph, flavour, "What's the weather in Xyzzyville?")

    assert answer.startswith("I couldn't find a place called 'Xyzzyville'.")
    assert not api["forecast"].called


@pytest.mark.parametrize(("endpoint", "status"), [("geocoding", 503), ("forecast", 500)])
async def test_an_open_meteo_server_error_is_a_sentence_not_an_exception(
    api: respx.MockRouter,
    offline_model: OfflineChatModel,
    flavour: Flavour,
    endpoint: str,
    status: int,
) -> None:
    api[endpoint].mock(return_value=httpx.Response(status, text="<html>oops</html>"))
    graph = open_meteo_graph(offline_model)

    answer = await ask(graph, flavour, "What's the weather in London?")

    assert answer == (
        f"The weather service Open-Meteo is having trouble (HTTP {status}); "
        "please try again in a moment."
    )


async def test_auto_falls_back_to_simulated_weather_when_open_meteo_is_unreachable(
    api: respx.MockRouter,
    offline_model: OfflineChatModel,
    flavour: Flavour,
    provider_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider_env.setenv("WEATHER_PROVIDER", "auto")
    api["geocoding"].mock(side_effect=httpx.ConnectError("[Errno 101] Network is unreachable"))
    graph = build_graph(InMemorySaver(), model=offline_model, settings=AgentSettings())

    with caplog.at_level(logging.WARNING):
        messages = await run(graph, flavour, "What's the weather in London?")

    answer = messages[-1]
    assert isinstance(answer, AIMessage)
    # The offline gazetteer found London; the simulated numbers follow the real clock.
    assert re.match(r"Right now in London, United Kingdom it's -?\d+(\.\d)?°C", answer.text)
    assert f"({FALLBACK_NOTE})" in answer.text
    assert "Open-Meteo could not be reached" in answer.text
    [tool_message] = [m for m in messages if isinstance(m, ToolMessage)]
    result = json.loads(tool_message.text)
    assert (result["source"], result["simulated"]) == ("simulated", True)

    warnings = [r for r in caplog.records if r.name == "agent.weather.auto"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "open-meteo unavailable" in warnings[0].getMessage()
    assert "using simulated weather" in warnings[0].getMessage()
    assert api["geocoding"].call_count == 1
    assert not api["forecast"].called  # still marked down: the forecast never tried the network

    # The next turn stays on simulated weather without touching the network again.
    tomorrow = await ask(graph, flavour, "and tomorrow?")
    assert tomorrow.startswith("Tomorrow in London")
    assert FALLBACK_NOTE in tomorrow
    assert api["geocoding"].call_count == 1
    assert not api["forecast"].called


async def test_auto_uses_open_meteo_when_it_answers(
    api: respx.MockRouter,
    offline_model: OfflineChatModel,
    flavour: Flavour,
    provider_env: pytest.MonkeyPatch,
) -> None:
    provider_env.setenv("WEATHER_PROVIDER", "auto")
    graph = build_graph(InMemorySaver(), model=offline_model, settings=AgentSettings())

    answer = await ask(graph, flavour, "What's the weather in London?")

    assert answer.startswith("Right now in London, England, United Kingdom it's 14.2°C")
    assert FALLBACK_NOTE not in answer
