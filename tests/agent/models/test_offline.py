"""The offline model plays the LLM's role: tool calls, answers from results, streaming."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from agent.models import OfflineChatModel
from agent.models.offline import SCOPE_ANSWER, compose_from_result
from agent.tools import CURRENT_WEATHER_TOOL, FORECAST_TOOL, build_tools
from agent.weather import SimulatedWeather

TOOL_NAMES = [CURRENT_WEATHER_TOOL, FORECAST_TOOL]


def test_asks_for_current_weather(offline_model: OfflineChatModel) -> None:
    reply = offline_model.reply([HumanMessage("What's the weather in London?")], TOOL_NAMES)
    assert reply.content == ""
    [call] = reply.tool_calls
    assert call["name"] == CURRENT_WEATHER_TOOL
    assert call["args"] == {"location": "London", "units": "metric"}


def test_follow_up_reuses_place_and_units(offline_model: OfflineChatModel) -> None:
    first = AIMessage(
        "",
        tool_calls=[
            {
                "name": CURRENT_WEATHER_TOOL,
                "args": {"location": "Oslo", "units": "imperial"},
                "id": "c1",
            }
        ],
    )
    history = [
        HumanMessage("Oslo weather in Fahrenheit"),
        first,
        ToolMessage("{}", tool_call_id="c1"),
        AIMessage("It's cold."),
        HumanMessage("and tomorrow?"),
    ]
    [call] = offline_model.reply(history, TOOL_NAMES).tool_calls
    assert call["name"] == FORECAST_TOOL
    assert call["args"] == {"location": "Oslo", "units": "imperial", "start_day": 1, "days": 1}


def test_without_bound_tools_it_says_so(offline_model: OfflineChatModel) -> None:
    reply = offline_model.reply([HumanMessage("weather in Rome")], [])
    assert not reply.tool_calls
    assert "weather tools are not available" in reply.text


def test_bind_tools_passes_the_tool_names(offline_model: OfflineChatModel) -> None:
    bound = offline_model.bind_tools(build_tools(SimulatedWeather()))
    reply = bound.invoke([HumanMessage("weather in Rome")])
    assert reply.tool_calls[0]["name"] == CURRENT_WEATHER_TOOL


def test_answers_from_tool_results(offline_model: OfflineChatModel) -> None:
    result = {
        "location": "Rome, Italy",
        "temperature": "14°C",
        "feels_like": "13°C",
        "conditions": "clear sky",
        "wind": "5 km/h",
        "humidity": "60%",
        "note": "Simulated weather.",
    }
    history = [
        HumanMessage("weather in Rome"),
        AIMessage("", tool_calls=[{"name": CURRENT_WEATHER_TOOL, "args": {}, "id": "c1"}]),
        ToolMessage(json.dumps(result), tool_call_id="c1"),
    ]
    answer = offline_model.reply(history, TOOL_NAMES).text
    assert "Rome, Italy" in answer
    assert "14°C" in answer
    assert "clear sky" in answer
    assert "(Simulated weather.)" in answer


def test_tool_errors_are_relayed_as_sentences() -> None:
    assert compose_from_result('{"error": "No such place."}') == "No such place."
    assert compose_from_result("Sorry, the lookup failed.") == "Sorry, the lookup failed."


def test_streams_the_answer_word_by_word(offline_model: OfflineChatModel) -> None:
    chunks = list(offline_model.stream([HumanMessage("Tell me a joke")]))
    assert len(chunks) > 10
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == SCOPE_ANSWER


async def test_streams_tool_calls_as_one_chunk(offline_model: OfflineChatModel) -> None:
    bound = offline_model.bind_tools(build_tools(SimulatedWeather()))
    chunks = [chunk async for chunk in bound.astream([HumanMessage("weather in Rome")])]
    with_calls = [c for c in chunks if isinstance(c, AIMessageChunk) and c.tool_call_chunks]
    assert len(with_calls) == 1  # a tool call is not drip-fed: it arrives whole
    assert with_calls[0].tool_calls[0]["args"] == {"location": "Rome", "units": "metric"}


def test_same_conversation_same_reply(offline_model: OfflineChatModel) -> None:
    messages = [HumanMessage("Hi, I'm Alice"), AIMessage("Hello"), HumanMessage("What's my name?")]
    first = offline_model.reply(messages, TOOL_NAMES)
    assert first.text == "Your name is Alice."
    assert offline_model.reply(messages, TOOL_NAMES).text == first.text


def test_name_unknown(offline_model: OfflineChatModel) -> None:
    answer = offline_model.reply([HumanMessage("what's my name?")], TOOL_NAMES).text
    assert "don't know your name" in answer
