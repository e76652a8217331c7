"""The OpenAI model path for real: `load_chat_model` -> `ChatOpenAI` -> HTTP -> a local stub.

Nothing here is faked inside the process: the graph talks to `tests.agent.openai_stub`, an
OpenAI-compatible HTTP server on 127.0.0.1, through the real `openai` client, both with
plain JSON responses and with server-sent event streams.
"""

from __future__ import annotations

import functools
import json
import operator
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import OpenAIAPIError, OpenAIConnectionError
from langgraph.graph.state import CompiledStateGraph
from pydantic import SecretStr

from agent import AgentSettings, build_graph
from agent.config import DEFAULT_OPENAI_MODEL
from agent.models import OfflineChatModel, load_chat_model
from agent.tools import CURRENT_WEATHER_TOOL, FORECAST_TOOL, WeatherTools
from agent.weather import SimulatedWeather
from tests.agent.openai_stub import Failure, OpenAIStub, RecordedRequest

Graph = CompiledStateGraph[Any, Any, Any, Any]
StreamItem = tuple[BaseMessage, dict[str, Any]]
"""What `stream_mode="messages"` yields: a message (chunk) and its run metadata."""

QUESTION = "What's the weather in London right now?"
MODEL_NAME = "gpt-4o-mini"
FIRST_CALL_ID = "call_stub0001"  # the stub numbers tool calls by request: the first request
APOLOGY_START = "Sorry, I couldn't reach the language model"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OpenAI/LangSmith settings or `.env` from the developer's machine leak in."""
    for name in (
        "MODEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_BASE",
        "OPENAI_ORGANIZATION",
        "OPENAI_PROJECT",
        "OPENAI_PROXY",
        "LANGSMITH_TRACING",
        "LANGCHAIN_TRACING_V2",
        "LANGSMITH_API_KEY",
        "LANGCHAIN_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # AgentSettings reads `.env` from the working directory


def stub_settings(stub: OpenAIStub, **overrides: Any) -> AgentSettings:
    fields: dict[str, Any] = {
        "model": f"openai:{MODEL_NAME}",
        "openai_api_key": "test-key",
        "openai_base_url": stub.base_url,
        **overrides,
    }
    return AgentSettings(**fields)


def stub_model(stub: OpenAIStub) -> ChatOpenAI:
    model = load_chat_model(stub_settings(stub))
    assert isinstance(model, ChatOpenAI)
    return model


def openai_graph(stub: OpenAIStub, weather: SimulatedWeather) -> Graph:
    return build_graph(model=stub_model(stub), weather=weather)


def expected_temperature(weather: SimulatedWeather) -> str:
    """The temperature the tool reports for London, computed without the graph or the model."""
    report = WeatherTools(weather).current("London")
    temperature = report["temperature"]
    assert isinstance(temperature, str)
    assert temperature.endswith("°C")
    return temperature


def user_input(text: str = QUESTION) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def assert_loop_requests(requests: list[RecordedRequest], temperature: str) -> None:
    """Two chat completions: the question with the tools, then the question plus tool result."""
    assert [(r.method, r.path) for r in requests] == [("POST", "/v1/chat/completions")] * 2
    first, second = requests
    for request in requests:
        assert request.headers["authorization"] == "Bearer test-key"
        assert request.body["model"] == MODEL_NAME
        assert request.body["temperature"] == 0
        assert sorted(request.tool_names) == sorted([CURRENT_WEATHER_TOOL, FORECAST_TOOL])

    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert first.messages[-1]["content"] == QUESTION
    weather_tool = next(
        t for t in first.body["tools"] if t["function"]["name"] == CURRENT_WEATHER_TOOL
    )
    assert weather_tool["type"] == "function"
    assert "location" in weather_tool["function"]["parameters"]["properties"]

    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "tool"]
    assistant, tool = second.messages[-2:]
    [call] = assistant["tool_calls"]
    assert call["id"] == FIRST_CALL_ID
    assert call["type"] == "function"
    assert call["function"]["name"] == CURRENT_WEATHER_TOOL
    assert json.loads(call["function"]["arguments"]) == {"location": "London"}
    assert tool["tool_call_id"] == FIRST_CALL_ID
    result = json.loads(tool["content"])
    assert result["temperature"] == temperature
    assert result["location"].startswith("London")
    assert result["simulated"] is True


def assert_loop_state(messages: list[BaseMessage], temperature: str) -> None:
    """Question, tool call, tool result, final answer quoting the tool's temperature."""
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    _, asked, result, final = messages
    assert isinstance(asked, AIMessage)
    assert asked.tool_calls == [
        {
            "name": CURRENT_WEATHER_TOOL,
            "args": {"location": "London"},
            "id": FIRST_CALL_ID,
            "type": "tool_call",
        }
    ]
    assert isinstance(result, ToolMessage)
    assert result.tool_call_id == FIRST_CALL_ID
    assert result.name == CURRENT_WEATHER_TOOL
    assert result.status == "success"
    assert json.loads(result.text)["temperature"] == temperature
    assert isinstance(final, AIMessage)
    assert final.tool_calls == []
    assert final.text == f"It is {temperature} in London."
    assert final.response_metadata["finish_reason"] == "stop"
    assert final.response_metadata["model_name"] == f"{MODEL_NAME}-2024-07-18"


# --- the weather loop over HTTP ---------------------------------------------------------------


def test_invoke_completes_the_weather_loop_through_openai(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather
) -> None:
    graph = openai_graph(openai_stub, simulated_weather)
    temperature = expected_temperature(simulated_weather)

    state = graph.invoke(user_input())

    requests = openai_stub.requests
    assert_loop_requests(requests, temperature)
    assert not any(r.streaming for r in requests)
    assert_loop_state(state["messages"], temperature)
    final = state["messages"][-1]
    assert isinstance(final, AIMessage)
    assert final.usage_metadata is not None
    assert final.usage_metadata["total_tokens"] == 132  # the stub's `usage`, parsed


async def test_ainvoke_completes_the_weather_loop_through_openai(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather
) -> None:
    graph = openai_graph(openai_stub, simulated_weather)
    temperature = expected_temperature(simulated_weather)

    state = await graph.ainvoke(user_input())

    assert_loop_requests(openai_stub.requests, temperature)
    assert_loop_state(state["messages"], temperature)


def message_item(payload: object) -> StreamItem:
    """A `messages` stream payload, checked to be (message, metadata)."""
    assert isinstance(payload, tuple)
    message, metadata = payload
    assert isinstance(message, BaseMessage)
    assert isinstance(metadata, dict)
    return message, metadata


def split_stream(
    items: list[StreamItem],
) -> tuple[list[AIMessageChunk], list[ToolMessage], list[AIMessageChunk]]:
    """`messages` stream items -> (chunks of the tool call, tool results, answer chunks)."""
    before: list[AIMessageChunk] = []
    tools: list[ToolMessage] = []
    after: list[AIMessageChunk] = []
    for message, metadata in items:
        if isinstance(message, ToolMessage):
            assert metadata["langgraph_node"] == "tools"
            tools.append(message)
        else:
            assert isinstance(message, AIMessageChunk), message
            assert metadata["langgraph_node"] == "model"
            (after if tools else before).append(message)
    return before, tools, after


def assert_streamed_loop(items: list[StreamItem], temperature: str) -> None:
    tool_call_chunks, tool_results, answer_chunks = split_stream(items)

    # The tool call arrived in pieces: the name first, then the arguments bit by bit.
    argument_pieces = [
        piece["args"] for c in tool_call_chunks for piece in c.tool_call_chunks if piece["args"]
    ]
    assert len(argument_pieces) >= 3
    assert json.loads("".join(argument_pieces)) == {"location": "London"}
    tool_call = functools.reduce(operator.add, tool_call_chunks)
    assert tool_call.tool_calls == [
        {
            "name": CURRENT_WEATHER_TOOL,
            "args": {"location": "London"},
            "id": FIRST_CALL_ID,
            "type": "tool_call",
        }
    ]
    assert tool_call.response_metadata["finish_reason"] == "tool_calls"

    [result] = tool_results
    assert result.tool_call_id == FIRST_CALL_ID
    assert json.loads(result.text)["temperature"] == temperature

    # The answer came as several tokens, in order, which add up to the whole sentence.
    tokens = [c.text for c in answer_chunks if c.text]
    assert len(tokens) >= 4
    assert "".join(tokens) == f"It is {temperature} in London."
    answer = functools.reduce(operator.add, answer_chunks)
    assert answer.text == f"It is {temperature} in London."
    assert answer.tool_calls == []
    assert answer.response_metadata["finish_reason"] == "stop"


async def test_astream_messages_streams_tokens_over_sse(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather
) -> None:
    graph = openai_graph(openai_stub, simulated_weather)
    temperature = expected_temperature(simulated_weather)

    items: list[StreamItem] = []
    async for payload in graph.astream(user_input(), stream_mode="messages"):
        items.append(message_item(payload))

    assert_streamed_loop(items, temperature)
    requests = openai_stub.requests
    assert [r.body.get("stream") for r in requests] == [True, True]
    assert_loop_requests(requests, temperature)


def test_stream_yields_answer_tokens_before_the_model_node_finishes(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather
) -> None:
    graph = openai_graph(openai_stub, simulated_weather)
    temperature = expected_temperature(simulated_weather)

    events: list[tuple[str, Any]] = []
    for mode, payload in graph.stream(user_input(), stream_mode=["messages", "updates"]):
        events.append((mode, payload))

    items = [message_item(payload) for mode, payload in events if mode == "messages"]
    assert_streamed_loop(items, temperature)
    assert [r.body.get("stream") for r in openai_stub.requests] == [True, True]

    # Order of events: every token of the answer comes before the model node's final update.
    updates = [i for i, (mode, _) in enumerate(events) if mode == "updates"]
    assert [list(events[i][1]) for i in updates] == [["model"], ["tools"], ["model"]]
    final_update = updates[-1]
    token_positions = [
        i
        for i, (mode, payload) in enumerate(events)
        if mode == "messages" and isinstance(payload[0], AIMessageChunk) and payload[0].text
    ]
    assert len(token_positions) >= 4
    assert max(token_positions) < final_update
    [final] = events[final_update][1]["model"]["messages"]
    assert final.text == f"It is {temperature} in London."


# --- the model failing -----------------------------------------------------------------------


def assert_apology(messages: list[BaseMessage], error_name: str) -> None:
    assert [type(m) for m in messages] == [HumanMessage, AIMessage]
    apology = messages[-1]
    assert isinstance(apology, AIMessage)
    assert apology.tool_calls == []
    assert apology.text.startswith(APOLOGY_START)
    assert f"({error_name})" in apology.text
    assert apology.text.endswith("Please try again in a moment.")


def logged_model_error(caplog: pytest.LogCaptureFixture) -> BaseException:
    """The exception `agent.graph` logged for the failed model call (exactly one)."""
    [record] = [r for r in caplog.records if r.name == "agent.graph"]
    assert record.getMessage() == "chat model call failed"
    assert record.exc_info is not None
    error = record.exc_info[1]
    assert error is not None
    return error


def assert_http_error(error: BaseException, status: int) -> None:
    """langchain-openai's wrapper around the `openai` error for an HTTP `status` answer."""
    assert isinstance(error, OpenAIAPIError)
    assert isinstance(error.__cause__, openai.InternalServerError)
    assert error.__cause__.status_code == status
    assert error.__cause__.message.startswith(f"Error code: {status}")


def test_http_500_becomes_an_apology(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather, caplog: pytest.LogCaptureFixture
) -> None:
    openai_stub.fail_with(Failure(status=500, should_retry=False))
    graph = openai_graph(openai_stub, simulated_weather)

    state = graph.invoke(user_input())

    assert_apology(state["messages"], "OpenAIAPIError")
    assert_http_error(logged_model_error(caplog), 500)
    assert len(openai_stub.requests) == 1  # `x-should-retry: false` is obeyed


async def test_http_500_is_retried_then_becomes_an_apology(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather, caplog: pytest.LogCaptureFixture
) -> None:
    # `retry-after-ms: 1` keeps the client's retries (2 by default) from sleeping.
    openai_stub.fail_with(Failure(status=500, retry_after_ms=1))
    model = stub_model(openai_stub)
    graph = build_graph(model=model, weather=simulated_weather)

    state = await graph.ainvoke(user_input())

    assert_apology(state["messages"], "OpenAIAPIError")
    assert_http_error(logged_model_error(caplog), 500)
    assert model.root_async_client is not None
    retries = model.root_async_client.max_retries
    assert retries == 2  # load_chat_model leaves the openai client's default
    assert len(openai_stub.requests) == 1 + retries


async def test_http_503_while_streaming_becomes_an_apology(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather, caplog: pytest.LogCaptureFixture
) -> None:
    openai_stub.fail_with(Failure(status=503, should_retry=False))
    graph = openai_graph(openai_stub, simulated_weather)

    items = [
        message_item(payload)
        async for payload in graph.astream(user_input(), stream_mode="messages")
    ]

    [(apology, metadata)] = items
    assert metadata["langgraph_node"] == "model"
    assert isinstance(apology, AIMessage)
    assert apology.text.startswith(APOLOGY_START)
    assert "(OpenAIAPIError)" in apology.text
    assert_http_error(logged_model_error(caplog), 503)
    [request] = openai_stub.requests
    assert request.streaming


def test_unreachable_server_becomes_an_apology(
    openai_stub: OpenAIStub, simulated_weather: SimulatedWeather, caplog: pytest.LogCaptureFixture
) -> None:
    # Slowest test here (~1.3 s): the openai client retries a refused connection twice with
    # backoff, and load_chat_model has no setting for `max_retries`.
    graph = openai_graph(openai_stub, simulated_weather)
    openai_stub.stop()  # the port now refuses connections

    state = graph.invoke(user_input())

    assert_apology(state["messages"], "OpenAIConnectionError")
    error = logged_model_error(caplog)
    assert isinstance(error, OpenAIConnectionError)
    assert isinstance(error.__cause__, openai.APIConnectionError)
    assert openai_stub.requests == []


# --- load_chat_model --------------------------------------------------------------------------


def test_openai_model_without_key_or_base_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL", "openai:x")

    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        load_chat_model(AgentSettings())


def test_offline_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL", "offline")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")

    assert isinstance(load_chat_model(AgentSettings()), OfflineChatModel)


def test_empty_model_with_a_key_means_gpt_4o_mini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL", "")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")

    settings = AgentSettings()
    model = load_chat_model(settings)

    assert settings.resolved_model == f"openai:{DEFAULT_OPENAI_MODEL}" == "openai:gpt-4o-mini"
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "gpt-4o-mini"
    assert isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == "sk-from-env"
    assert model.temperature == 0


def test_model_settings_reach_the_server(openai_stub: OpenAIStub) -> None:
    model = stub_model(openai_stub)
    assert model.openai_api_base == openai_stub.base_url

    reply = model.invoke("hello")

    # Without tools bound the script cannot ask for the weather, and says so.
    assert isinstance(reply, AIMessage)
    assert reply.text == f"I have no {CURRENT_WEATHER_TOOL} tool, so I cannot look up the weather."
    [request] = openai_stub.requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == MODEL_NAME
    assert request.messages == [{"role": "user", "content": "hello"}]
    assert "tools" not in request.body


def test_base_url_without_key_uses_a_placeholder_key(openai_stub: OpenAIStub) -> None:
    """Local servers (Ollama, vLLM) need no key; the client still sends one."""
    model = load_chat_model(stub_settings(openai_stub, openai_api_key=None))

    model.invoke("hello")

    [request] = openai_stub.requests
    assert request.headers["authorization"] == "Bearer not-needed"
