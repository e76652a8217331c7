"""Simulated weather is deterministic, plausible and always marked as simulated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.weather import DailyForecast, Place, SimulatedWeather
from agent.weather.simulated import SIMULATED_NOTE
from tests.conftest import FIXED_NOW, fixed_clock

LONDON = Place("London", 51.5, -0.13, "United Kingdom", timezone="Europe/London")
SYDNEY = Place("Sydney", -33.87, 151.21, "Australia", timezone="Australia/Sydney")
SINGAPORE = Place("Singapore", 1.29, 103.85, "Singapore", timezone="Asia/Singapore")


def test_same_inputs_same_weather(simulated_weather: SimulatedWeather) -> None:
    other = SimulatedWeather(clock=fixed_clock)
    assert simulated_weather.forecast(LONDON, "metric", 7) == other.forecast(LONDON, "metric", 7)


def test_days_follow_the_place_calendar(simulated_weather: SimulatedWeather) -> None:
    forecast = simulated_weather.forecast(SYDNEY, "metric", 7)
    sydney_today = FIXED_NOW.astimezone(ZoneInfo("Australia/Sydney")).date()
    assert len(forecast.daily) == 7
    assert forecast.daily[0].date == sydney_today
    assert [d.date for d in forecast.daily] == [
        forecast.daily[0].date + timedelta(days=i) for i in range(7)
    ]


def test_marked_simulated(simulated_weather: SimulatedWeather) -> None:
    forecast = simulated_weather.forecast(LONDON, "metric", 1)
    assert forecast.simulated
    assert forecast.source == "simulated"
    assert forecast.note == SIMULATED_NOTE


def test_plausible_values_and_seasons() -> None:
    january = SimulatedWeather(clock=lambda: datetime(2026, 1, 15, 12, tzinfo=UTC))
    july = SimulatedWeather(clock=lambda: datetime(2026, 7, 15, 12, tzinfo=UTC))
    for source in (january, july):
        for place in (LONDON, SYDNEY, SINGAPORE):
            for day in source.forecast(place, "metric", 7).daily:
                assert -40 < day.temperature_min <= day.temperature_max < 50
                assert 0 <= day.precipitation_probability <= 100
                assert day.description
    london_winter = january.forecast(LONDON, "metric", 7).daily
    london_summer = july.forecast(LONDON, "metric", 7).daily
    sydney_winter = july.forecast(SYDNEY, "metric", 7).daily
    sydney_summer = january.forecast(SYDNEY, "metric", 7).daily

    def mean(days: list[DailyForecast]) -> float:
        return sum(d.temperature_max for d in days) / len(days)

    assert mean(london_summer) > mean(london_winter) + 5
    assert mean(sydney_summer) > mean(sydney_winter) + 3  # hemispheres are mirrored


def test_imperial_is_a_conversion_of_metric(simulated_weather: SimulatedWeather) -> None:
    metric = simulated_weather.forecast(LONDON, "metric", 2)
    imperial = simulated_weather.forecast(LONDON, "imperial", 2)
    assert abs(imperial.current.temperature - (metric.current.temperature * 9 / 5 + 32)) < 0.1
    assert abs(imperial.daily[1].wind_speed_max - metric.daily[1].wind_speed_max / 1.609) < 0.1
    assert imperial.daily[1].weather_code == metric.daily[1].weather_code


async def test_async_matches_sync(simulated_weather: SimulatedWeather) -> None:
    assert await simulated_weather.alookup("Oslo") == simulated_weather.lookup("Oslo")
    place = simulated_weather.lookup("Oslo")
    assert place is not None
    assert await simulated_weather.aforecast(place, "metric", 3) == simulated_weather.forecast(
        place, "metric", 3
    )
