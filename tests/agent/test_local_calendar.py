"""Every relative day counted in the asked-about place's own calendar, whatever the UTC hour.

The bug this guards against: asked at 18:30 UTC on Thursday 3 Dec 2026 about "Tokyo this
weekend", the agent answered Sunday 6 and Monday 7 Dec, counting the weekend from the UTC
date when it was already Friday in Tokyo. Clocks are injected; nothing depends on real time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import respx
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent import build_graph
from agent.models import OfflineChatModel
from agent.prompts import SYSTEM_PROMPT
from agent.tools import FORECAST_TOOL, WEEKDAYS, resolve_start
from agent.weather import OpenMeteoWeather, SimulatedWeather
from agent.weather.open_meteo import FORECAST_URL, GEOCODING_URL
from tests.agent.fake_open_meteo import load_fixture
from tests.agent.openai_stub import OpenAIStub
from tests.agent.test_openai_path import stub_model

THU_1830 = datetime(2026, 12, 3, 18, 30, tzinfo=UTC)  # Tokyo: Fri 03:30; Los Angeles: Thu 10:30
FRI_0200 = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)  # Tokyo: Fri 11:00; Honolulu: Thu 16:00
SAT_2000 = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)  # Tokyo: Sun 05:00; Honolulu: Sat 10:00
SUN_2330 = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)  # Auckland: Mon 12:30; Honolulu: Sun 13:30
MON_0500 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # Honolulu: Sun 19:00; London: Mon 05:00


def clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def forecast_dates(messages: list[Any]) -> list[str]:
    """The dates of the (last) forecast tool result of a turn."""
    [result] = [m for m in messages if isinstance(m, ToolMessage) and m.name == FORECAST_TOOL][-1:]
    return [day["date"] for day in json.loads(result.text)["days"]]


def test_resolve_start_over_a_whole_week() -> None:
    monday = date(2026, 11, 30)
    for shift in range(7):
        today = date.fromordinal(monday.toordinal() + shift)
        assert resolve_start("today", today) == (0, 1)
        assert resolve_start("tomorrow", today) == (1, 1)
        for index, name in enumerate(WEEKDAYS):
            assert resolve_start(name, today) == ((index - shift) % 7, 1)
        weekend = (0, 1) if shift == 6 else (max(0, 5 - shift), 2)
        assert resolve_start("weekend", today) == weekend
        assert resolve_start("2026-12-06", today) == ((date(2026, 12, 6) - today).days, 1)


# (UTC moment, question, the forecast dates at the place). Tokyo, Auckland: east of UTC;
# Los Angeles, Honolulu: west of it; London: on it.
SIMULATED_CASES = [
    (THU_1830, "What's the weather in Tokyo this weekend?", ["2026-12-05", "2026-12-06"]),
    (THU_1830, "Los Angeles weather this weekend", ["2026-12-05", "2026-12-06"]),
    (THU_1830, "Tokyo weather tomorrow", ["2026-12-05"]),
    (THU_1830, "Los Angeles weather tomorrow", ["2026-12-04"]),
    (FRI_0200, "Tokyo weather on Friday", ["2026-12-04"]),  # today there
    (FRI_0200, "Honolulu weather on Friday", ["2026-12-04"]),  # tomorrow there
    (FRI_0200, "Honolulu weather on Thursday", ["2026-12-03"]),  # still today there
    (SAT_2000, "Tokyo weather this weekend", ["2026-12-06"]),  # Sunday there: what is left
    (SAT_2000, "Honolulu weather this weekend", ["2026-12-05", "2026-12-06"]),
    (SUN_2330, "Auckland weather this weekend", ["2026-12-12", "2026-12-13"]),  # Monday there
    (SUN_2330, "Auckland forecast for the next 3 days", ["2026-12-07", "2026-12-08", "2026-12-09"]),
    (SUN_2330, "Honolulu weather this weekend", ["2026-12-06"]),
    (MON_0500, "Honolulu forecast", ["2026-12-06", "2026-12-07", "2026-12-08"]),  # from Sunday
    (MON_0500, "London weather on Monday", ["2026-12-07"]),
]


@pytest.mark.parametrize(("moment", "question", "dates"), SIMULATED_CASES)
async def test_simulated_weather_days_are_the_place_s(
    moment: datetime, question: str, dates: list[str]
) -> None:
    graph = build_graph(
        InMemorySaver(),
        model=OfflineChatModel(clock=clock(moment)),
        weather=SimulatedWeather(clock=clock(moment)),
    )
    state = await graph.ainvoke(
        {"messages": [("user", question)]}, {"configurable": {"thread_id": "t"}}
    )
    assert forecast_dates(state["messages"]) == dates
    answer = state["messages"][-1]
    assert isinstance(answer, AIMessage)
    [result] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    for day in json.loads(result.text)["days"]:  # "today", "tomorrow", "Saturday 5 Dec"
        assert day["day"].lower() in answer.text.lower()


def test_a_follow_up_keeps_the_weekend_in_the_new_place_s_calendar() -> None:
    # Saturday 20:00 UTC: still Saturday in Honolulu (the weekend is Sat-Sun), already Sunday
    # in Tokyo (only Sunday is left): the follow-up recounts the weekend there.
    graph = build_graph(
        InMemorySaver(),
        model=OfflineChatModel(clock=clock(SAT_2000)),
        weather=SimulatedWeather(clock=clock(SAT_2000)),
    )
    config: Any = {"configurable": {"thread_id": "t"}}
    graph.invoke({"messages": [("user", "Honolulu weather this weekend")]}, config)
    state = graph.invoke({"messages": [("user", "what about Tokyo?")]}, config)
    assert forecast_dates(state["messages"]) == ["2026-12-06"]


# --- Open-Meteo: the place's days are the API's (timezone=auto) ----------------------


def open_meteo_answers(first_day: date, timezone: str, offset_s: int) -> respx.MockRouter:
    """Open-Meteo for one place whose forecast starts on `first_day` (its own today)."""
    place = {**load_fixture("geocoding_london.json")["results"][0], "timezone": timezone}
    payload = load_fixture("forecast_london_metric.json")
    payload.update(timezone=timezone, utc_offset_seconds=offset_s)
    payload["daily"]["time"] = [
        date.fromordinal(first_day.toordinal() + i).isoformat() for i in range(7)
    ]
    router = respx.mock(assert_all_called=False)
    router.get(GEOCODING_URL).mock(return_value=httpx.Response(200, json={"results": [place]}))
    router.get(FORECAST_URL).mock(return_value=httpx.Response(200, json=payload))
    return router


# (UTC moment of the model's clock, the place's today as Open-Meteo says, timezone, offset,
# question, dates): the model's own date never decides.
OPEN_METEO_CASES = [
    (
        THU_1830,
        date(2026, 12, 4),
        "Asia/Tokyo",
        32400,
        "this weekend",
        ["2026-12-05", "2026-12-06"],
    ),
    (FRI_0200, date(2026, 12, 3), "Pacific/Honolulu", -36000, "on Friday", ["2026-12-04"]),
    (FRI_0200, date(2026, 12, 3), "Pacific/Honolulu", -36000, "tomorrow", ["2026-12-04"]),
    (SAT_2000, date(2026, 12, 6), "Asia/Tokyo", 32400, "this weekend", ["2026-12-06"]),
    (SUN_2330, date(2026, 12, 7), "Pacific/Auckland", 46800, "on Sunday", ["2026-12-13"]),
]


@pytest.mark.parametrize(
    ("moment", "today", "timezone", "offset", "when", "dates"), OPEN_METEO_CASES
)
async def test_open_meteo_days_are_the_place_s(
    moment: datetime, today: date, timezone: str, offset: int, when: str, dates: list[str]
) -> None:
    graph = build_graph(
        InMemorySaver(), model=OfflineChatModel(clock=clock(moment)), weather=OpenMeteoWeather()
    )
    with open_meteo_answers(today, timezone, offset):
        state = await graph.ainvoke(
            {"messages": [("user", f"London weather {when}")]},
            {"configurable": {"thread_id": "t"}},
        )
    assert forecast_dates(state["messages"]) == dates
    result = json.loads(next(m for m in state["messages"] if isinstance(m, ToolMessage)).text)
    assert result["local_date"] == today.isoformat()


# --- a real model's contract, through the OpenAI-compatible stub ----------------------


def test_the_prompt_gives_no_date_of_ours() -> None:
    assert "UTC" not in SYSTEM_PROMPT
    assert "{today}" not in SYSTEM_PROMPT
    assert "start_day" not in SYSTEM_PROMPT


@pytest.mark.parametrize(
    ("moment", "arguments", "dates", "local_date"),
    [
        (
            THU_1830,
            {"location": "Tokyo", "start": "weekend"},
            ["2026-12-05", "2026-12-06"],
            "2026-12-04",
        ),
        (FRI_0200, {"location": "Honolulu", "start": "Friday"}, ["2026-12-04"], "2026-12-03"),
        (
            FRI_0200,
            {"location": "Tokyo", "start": "2026-12-06", "days": 2},
            ["2026-12-06", "2026-12-07"],
            "2026-12-04",
        ),
        (SUN_2330, {"location": "Auckland", "start": "tomorrow"}, ["2026-12-08"], "2026-12-07"),
    ],
)
async def test_a_real_model_names_days_and_the_tool_places_them(
    openai_stub: OpenAIStub,
    moment: datetime,
    arguments: dict[str, Any],
    dates: list[str],
    local_date: str,
) -> None:
    openai_stub.call_tool(FORECAST_TOOL, arguments)
    graph = build_graph(
        model=stub_model(openai_stub), weather=SimulatedWeather(clock=clock(moment))
    )
    state = await graph.ainvoke({"messages": [("user", "What's the weather there?")]})

    first, second = openai_stub.requests
    system = first.messages[0]["content"]
    assert first.messages[0]["role"] == "system"
    assert "UTC" not in system
    assert moment.date().isoformat() not in system
    [tool] = [t for t in first.body["tools"] if t["function"]["name"] == FORECAST_TOOL]
    properties = tool["function"]["parameters"]["properties"]
    assert "place's own calendar" in properties["start"]["description"]
    assert properties["start_day"]["description"].startswith("Only without `start`")
    result = json.loads(second.messages[-1]["content"])
    assert (result["local_date"], [d["date"] for d in result["days"]]) == (local_date, dates)
    assert result["local_weekday"] == date.fromisoformat(local_date).strftime("%A")
    answer = state["messages"][-1].text
    assert answer.startswith("Forecast for ")
    for day in dates:
        assert f"({day})" in answer


async def test_a_start_the_tool_cannot_place_is_explained_to_the_model(
    openai_stub: OpenAIStub,
) -> None:
    openai_stub.call_tool(FORECAST_TOOL, {"location": "Tokyo", "start": "next weekend"})
    graph = build_graph(
        model=stub_model(openai_stub), weather=SimulatedWeather(clock=clock(THU_1830))
    )
    await graph.ainvoke({"messages": [("user", "Tokyo next weekend?")]})
    tool_result = openai_stub.requests[1].messages[-1]["content"]
    assert "use 'today', 'tomorrow', a weekday name, 'weekend' or a date" in tool_result

    openai_stub.call_tool(FORECAST_TOOL, {"location": "Tokyo", "start": "2026-12-25"})
    await graph.ainvoke({"messages": [("user", "Tokyo on Christmas?")]})
    tool_result = json.loads(openai_stub.requests[3].messages[-1]["content"])
    assert tool_result == {
        "error": "2026-12-25 is outside the 7-day forecast for Tokyo, Japan, where it is "
        "Friday 2026-12-04."
    }
