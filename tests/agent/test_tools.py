"""The weather tools: arguments, reports and errors as data."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.tools import CURRENT_WEATHER_TOOL, FORECAST_TOOL, build_tools, day_label
from agent.weather import SimulatedWeather


def test_current_report(simulated_weather: SimulatedWeather) -> None:
    [current, _] = build_tools(simulated_weather)
    report = current.invoke({"location": "Rome", "units": "imperial"})
    assert current.name == CURRENT_WEATHER_TOOL
    assert report["location"] == "Rome, Italy"
    assert report["temperature"].endswith("°F")
    assert report["wind"].endswith("mph")
    assert report["simulated"] is True


async def test_forecast_window(simulated_weather: SimulatedWeather) -> None:
    [_, forecast] = build_tools(simulated_weather)
    report = await forecast.ainvoke({"location": "Rome", "start_day": 1, "days": 2})
    assert forecast.name == FORECAST_TOOL
    assert report["days"][0]["day"] == "tomorrow"
    assert len(report["days"]) == 2
    # A window running past the 7th day is cut at the 7th day.
    report = forecast.invoke({"location": "Rome", "start_day": 5, "days": 7})
    assert len(report["days"]) == 2


def test_invalid_arguments_are_refused(simulated_weather: SimulatedWeather) -> None:
    [_, forecast] = build_tools(simulated_weather)
    with pytest.raises(ValidationError):
        forecast.invoke({"location": "Rome", "days": 30})


def test_unknown_place_is_an_error_sentence(simulated_weather: SimulatedWeather) -> None:
    [current, _] = build_tools(simulated_weather)
    report = current.invoke({"location": "Xyzzyville"})
    assert report == {
        "error": "I couldn't find a place called 'Xyzzyville'. "
        "Try a city name, optionally with its country, e.g. 'Paris, France'."
    }


def test_day_labels() -> None:
    from datetime import date

    today = date(2026, 11, 25)
    assert day_label(today, today) == "today"
    assert day_label(date(2026, 11, 26), today) == "tomorrow"
    assert day_label(date(2026, 12, 1), today) == "Tuesday 1 Dec"
