"""The agent's tools: current weather and a daily forecast for a place name.

Tools never raise for weather problems: a failed lookup comes back as
`{"error": "<sentence for the user>"}` so the model can relay it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agent.weather import (
    MAX_FORECAST_DAYS,
    Forecast,
    Place,
    Units,
    WeatherError,
    WeatherSource,
)
from agent.weather.models import UNIT_LABELS

CURRENT_WEATHER_TOOL = "get_current_weather"
FORECAST_TOOL = "get_weather_forecast"


class CurrentWeatherInput(BaseModel):
    location: str = Field(
        description="Place name, optionally with country or US state, e.g. 'Paris, France'."
    )
    units: Units = Field(
        default="metric", description="'metric' (°C, km/h) or 'imperial' (°F, mph)."
    )


class ForecastInput(CurrentWeatherInput):
    days: int = Field(default=3, ge=1, le=MAX_FORECAST_DAYS, description="How many days (1-7).")
    start_day: int = Field(
        default=0,
        ge=0,
        le=MAX_FORECAST_DAYS - 1,
        description="First day: 0 = today, 1 = tomorrow, ... (at most 6).",
    )


def day_label(day: date, today: date) -> str:
    offset = (day - today).days
    if offset == 0:
        return "today"
    if offset == 1:
        return "tomorrow"
    return day.strftime("%A %d %b").replace(" 0", " ")


def _source_fields(forecast: Forecast) -> dict[str, Any]:
    fields: dict[str, Any] = {"source": forecast.source, "simulated": forecast.simulated}
    if forecast.note:
        fields["note"] = forecast.note
    return fields


def current_report(forecast: Forecast) -> dict[str, Any]:
    now, units = forecast.current, UNIT_LABELS[forecast.units]
    return {
        "location": forecast.place.label,
        "local_time": now.time,
        "units": forecast.units,
        "temperature": f"{now.temperature:g}{units['temperature']}",
        "feels_like": f"{now.feels_like:g}{units['temperature']}",
        "conditions": now.description,
        "humidity": f"{now.humidity}%",
        "wind": f"{now.wind_speed:g} {units['wind']}",
        **_source_fields(forecast),
    }


def forecast_report(forecast: Forecast, start_day: int, days: int) -> dict[str, Any]:
    units = UNIT_LABELS[forecast.units]
    today = forecast.daily[0].date if forecast.daily else date.today()
    return {
        "location": forecast.place.label,
        "units": forecast.units,
        "days": [
            {
                "date": day.date.isoformat(),
                "day": day_label(day.date, today),
                "conditions": day.description,
                "high": f"{day.temperature_max:g}{units['temperature']}",
                "low": f"{day.temperature_min:g}{units['temperature']}",
                "precipitation": f"{day.precipitation:g} {units['precipitation']}",
                "precipitation_chance": f"{day.precipitation_probability}%",
                "wind_max": f"{day.wind_speed_max:g} {units['wind']}",
            }
            for day in forecast.daily[start_day : start_day + days]
        ],
        **_source_fields(forecast),
    }


def _found(place: Place | None, location: str) -> Place:
    if place is None:
        raise WeatherError(
            f"I couldn't find a place called '{location}'. "
            "Try a city name, optionally with its country, e.g. 'Paris, France'."
        )
    return place


def _window(start_day: int, days: int) -> tuple[int, int]:
    start = max(0, min(start_day, MAX_FORECAST_DAYS - 1))
    return start, max(1, min(days, MAX_FORECAST_DAYS - start))


class WeatherTools:
    """Tool implementations bound to one weather source (sync and async twins)."""

    def __init__(self, source: WeatherSource) -> None:
        self.source = source

    def current(self, location: str, units: Units = "metric") -> dict[str, Any]:
        try:
            place = _found(self.source.lookup(location), location)
            return current_report(self.source.forecast(place, units, 1))
        except WeatherError as error:
            return {"error": str(error)}

    async def acurrent(self, location: str, units: Units = "metric") -> dict[str, Any]:
        try:
            place = _found(await self.source.alookup(location), location)
            return current_report(await self.source.aforecast(place, units, 1))
        except WeatherError as error:
            return {"error": str(error)}

    def forecast(
        self, location: str, units: Units = "metric", days: int = 3, start_day: int = 0
    ) -> dict[str, Any]:
        start, count = _window(start_day, days)
        try:
            place = _found(self.source.lookup(location), location)
            return forecast_report(self.source.forecast(place, units, start + count), start, count)
        except WeatherError as error:
            return {"error": str(error)}

    async def aforecast(
        self, location: str, units: Units = "metric", days: int = 3, start_day: int = 0
    ) -> dict[str, Any]:
        start, count = _window(start_day, days)
        try:
            place = _found(await self.source.alookup(location), location)
            fetched = await self.source.aforecast(place, units, start + count)
            return forecast_report(fetched, start, count)
        except WeatherError as error:
            return {"error": str(error)}


def build_tools(source: WeatherSource) -> list[BaseTool]:
    """The LangChain tools the model may call, bound to `source`."""
    impl = WeatherTools(source)
    return [
        StructuredTool.from_function(
            func=impl.current,
            coroutine=impl.acurrent,
            name=CURRENT_WEATHER_TOOL,
            description="Current weather conditions for a place.",
            args_schema=CurrentWeatherInput,
        ),
        StructuredTool.from_function(
            func=impl.forecast,
            coroutine=impl.aforecast,
            name=FORECAST_TOOL,
            description=(
                "Daily weather forecast for a place, up to 7 days ahead. Use start_day=1, "
                "days=1 for tomorrow; start_day and days for a weekend or any other range."
            ),
            args_schema=ForecastInput,
        ),
    ]
