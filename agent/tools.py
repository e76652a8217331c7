"""The agent's tools: current weather and a daily forecast for a place name.

Tools never raise for weather problems: a failed lookup comes back as
`{"error": "<sentence for the user>"}` so the model can relay it.

Days are the place's own: "today" is the date there, which may be a day ahead of or behind
the caller's (at 18:30 UTC on a Thursday it is already Friday in Tokyo). The forecast tool
therefore takes its first day by name (`start`: "tomorrow", "friday", "weekend", a date) and
resolves it against the first day of the place's forecast, which both weather sources give
in the place's calendar; a caller never has to count days from its own date.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import AfterValidator, BaseModel, Field

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
DEFAULT_DAYS = 3  # a forecast without a named first day


class CurrentWeatherInput(BaseModel):
    location: str = Field(
        description="Place name, optionally with country or US state, e.g. 'Paris, France'."
    )
    units: Units = Field(
        default="metric", description="'metric' (°C, km/h) or 'imperial' (°F, mph)."
    )


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKEND = "weekend"
_NAMED_STARTS = ("today", "tomorrow", WEEKEND, *WEEKDAYS)


def _check_start(value: str | None) -> str | None:
    """`start` in a canonical form; ValueError (shown to the model) if it is none of them."""
    if value is None:
        return None
    start = value.strip().lower()
    if start in _NAMED_STARTS:
        return start
    try:
        return date.fromisoformat(start).isoformat()
    except ValueError:
        raise ValueError(
            f"start={value!r}: use 'today', 'tomorrow', a weekday name, 'weekend' or a date "
            "YYYY-MM-DD"
        ) from None


class ForecastInput(CurrentWeatherInput):
    start: Annotated[str | None, AfterValidator(_check_start)] = Field(
        default=None,
        description="First day, in the place's own calendar: 'today', 'tomorrow', a weekday "
        "name ('friday': the next Friday there, today if it is Friday there), 'weekend' "
        "(Saturday and Sunday there; only Sunday on a Sunday), or a date 'YYYY-MM-DD' within "
        "the next 7 days there. Preferred over start_day.",
    )
    days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_FORECAST_DAYS,
        description="How many days (1-7). Default: the day `start` names (the whole weekend "
        "for 'weekend'); 3 without `start`.",
    )
    start_day: int = Field(
        default=0,
        ge=0,
        le=MAX_FORECAST_DAYS - 1,
        description="Only without `start`: days after today in the place's own calendar "
        "(0 = today there, 1 = tomorrow; at most 6).",
    )


def resolve_start(start: str, today: date) -> tuple[int, int]:
    """(days after `today`, days the name spans) for a canonical `start`; `today` is the
    place's own date. A date outside the forecast gives an offset outside 0-6."""
    weekday = today.weekday()  # Monday = 0
    if start == "today":
        return 0, 1
    if start == "tomorrow":
        return 1, 1
    if start == WEEKEND:
        if weekday == 6:
            return 0, 1  # Sunday: what is left of the weekend
        return max(0, 5 - weekday), 2
    if start in WEEKDAYS:
        return (WEEKDAYS.index(start) - weekday) % 7, 1
    return (date.fromisoformat(start) - today).days, 1


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
        # The place's own date: what "today" and every day below are counted from.
        "local_date": today.isoformat(),
        "local_weekday": today.strftime("%A"),
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


def _fetch_days(start: str | None, start_day: int, days: int | None) -> int:
    """How many days to ask the source for: all of them when the first day has a name
    (where it falls is known only once the place's own today is)."""
    if start is not None:
        return MAX_FORECAST_DAYS
    first, count = _window(start_day, days or DEFAULT_DAYS)
    return first + count


def _report(
    forecast: Forecast, start: str | None, start_day: int, days: int | None
) -> dict[str, Any]:
    if start is None:
        return forecast_report(forecast, *_window(start_day, days or DEFAULT_DAYS))
    today = forecast.daily[0].date if forecast.daily else date.today()
    offset, span = resolve_start(start, today)
    if not 0 <= offset < MAX_FORECAST_DAYS:
        raise WeatherError(
            f"{start} is outside the 7-day forecast for {forecast.place.label}, where it is "
            f"{today.strftime('%A %Y-%m-%d')}."
        )
    return forecast_report(forecast, *_window(offset, days or span))


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
        self,
        location: str,
        units: Units = "metric",
        days: int | None = None,
        start_day: int = 0,
        start: str | None = None,
    ) -> dict[str, Any]:
        start = _check_start(start)
        try:
            place = _found(self.source.lookup(location), location)
            fetched = self.source.forecast(place, units, _fetch_days(start, start_day, days))
            return _report(fetched, start, start_day, days)
        except WeatherError as error:
            return {"error": str(error)}

    async def aforecast(
        self,
        location: str,
        units: Units = "metric",
        days: int | None = None,
        start_day: int = 0,
        start: str | None = None,
    ) -> dict[str, Any]:
        start = _check_start(start)
        try:
            place = _found(await self.source.alookup(location), location)
            fetched = await self.source.aforecast(place, units, _fetch_days(start, start_day, days))
            return _report(fetched, start, start_day, days)
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
                "Daily weather forecast for a place, up to 7 days ahead, in the place's own "
                "calendar. Name the first day with `start` ('tomorrow', 'friday', 'weekend', "
                "a date) and let the tool count: it may already be another day there. Each "
                "day comes back with its date; `local_date` is today's date there."
            ),
            args_schema=ForecastInput,
        ),
    ]
