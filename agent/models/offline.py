"""A deterministic chat model that plays the LLM's part with no network and no key.

It really drives the tool loop: from the conversation it decides to call a weather
tool (with arguments carried over from earlier turns for follow-ups), and once the
tool results are in it writes the answer from them. Its answers stream token by
token like a real model's. The same conversation always gives the same reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from agent.models.understanding import NOW, Timeframe, Understanding, parse_name, understand
from agent.tools import CURRENT_WEATHER_TOOL, FORECAST_TOOL

SCOPE_ANSWER = (
    "I'm a weather assistant, so I can only help with the weather: current conditions and "
    "forecasts of up to 7 days for cities around the world. Try \"What's the weather in Paris "
    'tomorrow?"'
)
HELP_ANSWER = (
    "I can tell you the current weather or a forecast of up to 7 days for any city. Ask me "
    'things like "What\'s the weather in London?", "and tomorrow?", "Tokyo this weekend" '
    'or "next 3 days in New York in Fahrenheit".'
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)


class _WeatherRequest:
    """Place, time frame and units of the latest weather tool call in a conversation."""

    def __init__(self, call: ToolCall) -> None:
        args = call["args"]
        self.place: str | None = args.get("location")
        self.units = args.get("units", "metric")
        if call["name"] == FORECAST_TOOL:
            days = int(args.get("days") or (2 if args.get("start") == "weekend" else 3))
            self.timeframe = Timeframe(
                int(args.get("start_day", 0)), days, anchor=args.get("start")
            )
        else:
            self.timeframe = NOW


def _last_weather_request(messages: Sequence[BaseMessage]) -> _WeatherRequest | None:
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            for call in reversed(message.tool_calls):
                if call["name"] in (CURRENT_WEATHER_TOOL, FORECAST_TOOL):
                    return _WeatherRequest(call)
    return None


_REMEMBERED = re.compile(r"Known about the user[^:]*:(?P<facts>.*)")


def _remembered(messages: Sequence[BaseMessage], fact: str) -> str | None:
    """A fact from the system prompt's "Known about the user ..." line (earlier sessions)."""
    for message in messages:
        if message.type == "system":
            match = _REMEMBERED.search(_text(message))
            found = re.search(rf"\b{fact}: ([\w'-]+)", match["facts"]) if match else None
            if found:
                return found.group(1)
    return None


def _known_name(messages: Sequence[BaseMessage]) -> str | None:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            name = parse_name(_text(message))
            if name:
                return name
    return _remembered(messages, "name")


def _describe_day(day: dict[str, Any]) -> str:
    return (
        f"{day['conditions']}, {day['low']} to {day['high']}, "
        f"{day['precipitation_chance']} chance of precipitation, wind up to {day['wind_max']}"
    )


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _day_name(day: dict[str, Any]) -> str:
    label = str(day["day"])
    return _capitalized(label) if label in ("today", "tomorrow") else f"On {label}"


def compose_from_result(content: str) -> str:
    """One paragraph of answer from one tool result (JSON report or error text)."""
    try:
        result = json.loads(content)
    except ValueError:
        return content  # already a sentence (e.g. the tool node's error message)
    if not isinstance(result, dict):
        return str(result)
    if "error" in result:
        return str(result["error"])
    location = result.get("location", "there")
    if "days" in result:
        days: list[dict[str, Any]] = result["days"]
        if len(days) == 1:
            text = f"{_day_name(days[0])} in {location}: {_describe_day(days[0])}."
        else:
            lines = [f"- {_capitalized(d['day'])}: {_describe_day(d)}" for d in days]
            text = f"Here's the forecast for {location}:\n" + "\n".join(lines)
    else:
        text = (
            f"Right now in {location} it's {result['temperature']} "
            f"(feels like {result['feels_like']}), {result['conditions']}, "
            f"with wind {result['wind']} and humidity {result['humidity']}."
        )
    if result.get("note"):
        text += f"\n\n({result['note']})"
    return text


class OfflineChatModel(BaseChatModel):
    """Rule-based stand-in for an LLM, for the weather agent's tools and conversations."""

    clock: Callable[[], datetime] = Field(default=_utcnow, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "offline-weather"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": "offline"}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        names = [convert_to_openai_tool(tool)["function"]["name"] for tool in tools]
        return self.bind(tool_names=names, **kwargs)

    # --- deciding -------------------------------------------------------------------

    def reply(self, messages: Sequence[BaseMessage], tool_names: Sequence[str] = ()) -> AIMessage:
        """The next assistant message for this conversation."""
        conversation = [m for m in messages if m.type != "system"]
        if conversation and isinstance(conversation[-1], ToolMessage):
            return AIMessage(content=self._answer_from_tools(conversation))
        last_human = next((m for m in reversed(conversation) if isinstance(m, HumanMessage)), None)
        if last_human is None:
            return AIMessage(content=HELP_ANSWER)
        previous = _last_weather_request(conversation)
        today = self.clock().date()
        said = understand(_text(last_human), today, has_weather_context=previous is not None)
        if said.intent == "weather":
            units = _remembered(messages, "preferred units") or "metric"
            return self._weather(said, previous, tool_names, len(conversation), today, units)
        return AIMessage(content=self._small_talk(said, messages))

    def _weather(
        self,
        said: Understanding,
        previous: _WeatherRequest | None,
        tool_names: Sequence[str],
        turn: int,
        today: date,
        default_units: str,
    ) -> AIMessage:
        place = said.place or (previous.place if previous else None)
        if not place:
            return AIMessage(
                content="Which place would you like the weather for? For example: "
                '"What\'s the weather in London?"'
            )
        timeframe = said.timeframe
        if timeframe is None:
            # "what about Paris?" keeps the time frame; a fresh question means now.
            timeframe = previous.timeframe if (previous and said.follow_up) else NOW
        units = said.units or (previous.units if previous else default_units)
        wanted = CURRENT_WEATHER_TOOL if timeframe.is_now else FORECAST_TOOL
        if wanted not in tool_names:
            return AIMessage(
                content="I can't look up the weather right now: my weather tools are not "
                "available in this setup."
            )
        args: dict[str, Any] = {"location": place, "units": units}
        if timeframe.anchor == "weekend":
            args.update(start="weekend")  # the tool spans the weekend in the place's calendar
        elif timeframe.anchor:
            args.update(start=timeframe.anchor, days=timeframe.days)
        elif not timeframe.is_now:
            # "tomorrow", "next 3 days": counted from the place's today by the tool.
            args.update(start_day=timeframe.start_day, days=timeframe.days)
        call = ToolCall(name=wanted, args=args, id=f"call_offline_{turn}", type="tool_call")
        return AIMessage(content="", tool_calls=[call])

    def _small_talk(self, said: Understanding, messages: Sequence[BaseMessage]) -> str:
        name = _known_name(messages)
        if said.intent == "introduce":
            return f"Nice to meet you, {said.name}! {HELP_ANSWER}"
        if said.intent == "ask_name":
            if name:
                return f"Your name is {name}."
            return "I don't know your name yet. Tell me with \"I'm <your name>\"."
        if said.intent == "greeting":
            greeting = f"Hello, {name}!" if name else "Hello!"
            return f"{greeting} I'm a weather assistant. {HELP_ANSWER}"
        if said.intent == "thanks":
            return "You're welcome! Ask me about the weather anywhere, any time."
        if said.intent == "help":
            return HELP_ANSWER
        if said.intent == "goodbye":
            return f"Goodbye{', ' + name if name else ''}! Come back for the weather any time."
        return SCOPE_ANSWER

    def _answer_from_tools(self, conversation: Sequence[BaseMessage]) -> str:
        results: list[ToolMessage] = []
        for message in reversed(conversation):
            if not isinstance(message, ToolMessage):
                break
            results.insert(0, message)
        paragraphs = [compose_from_result(_text(result)) for result in results]
        last_human = next((m for m in reversed(conversation) if isinstance(m, HumanMessage)), None)
        introduced = parse_name(_text(last_human)) if last_human else None
        if introduced:
            paragraphs.insert(0, f"Nice to meet you, {introduced}!")
        return "\n\n".join(paragraphs)

    # --- BaseChatModel plumbing ---------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self.reply(messages, kwargs.get("tool_names", ()))
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)

    def _chunks(self, message: AIMessage) -> Iterator[ChatGenerationChunk]:
        if message.tool_calls:
            chunk = AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"],
                        "args": json.dumps(call["args"]),
                        "id": call["id"],
                        "index": index,
                        "type": "tool_call_chunk",
                    }
                    for index, call in enumerate(message.tool_calls)
                ],
            )
            yield ChatGenerationChunk(message=chunk)
            return
        # One token per word, each with the whitespace after it: joined, they are the answer.
        for token in re.split(r"(?<=\s)(?=\S)", _text(message)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self.reply(messages, kwargs.get("tool_names", ()))):
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(self.reply(messages, kwargs.get("tool_names", ()))):
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
