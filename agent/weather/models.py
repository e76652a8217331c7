"""Plain data types shared by every weather source: places, conditions and units."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Units = Literal["metric", "imperial"]

# What each unit system calls its measurements; both sources report in these.
UNIT_LABELS: dict[Units, dict[str, str]] = {
    "metric": {"temperature": "°C", "wind": "km/h", "precipitation": "mm"},
    "imperial": {"temperature": "°F", "wind": "mph", "precipitation": "in"},
}


class WeatherError(Exception):
    """A weather lookup failed in a way worth telling the user about.

    The message is a complete sentence meant for the end user.
    """


class WeatherUnavailableError(WeatherError):
    """The weather service could not be reached or answered with an error."""


@dataclass(frozen=True)
class Place:
    """A geocoded place."""

    name: str
    latitude: float
    longitude: float
    country: str = ""
    region: str = ""
    timezone: str = "UTC"
    population: int = 0

    @property
    def label(self) -> str:
        """Human-readable name, e.g. "London, England, United Kingdom"."""
        parts = [self.name]
        for part in (self.region, self.country):
            if part and part not in parts:
                parts.append(part)
        return ", ".join(parts)


@dataclass(frozen=True)
class CurrentConditions:
    """Weather right now at a place."""

    time: str
    temperature: float
    feels_like: float
    humidity: int
    wind_speed: float
    weather_code: int
    description: str


@dataclass(frozen=True)
class DailyForecast:
    """One day of forecast at a place."""

    date: date
    temperature_max: float
    temperature_min: float
    precipitation: float
    precipitation_probability: int
    wind_speed_max: float
    weather_code: int
    description: str


@dataclass(frozen=True)
class Forecast:
    """Everything a source returns for one place: now, and the days ahead (today first)."""

    place: Place
    units: Units
    source: str
    current: CurrentConditions
    daily: list[DailyForecast] = field(default_factory=list)
    simulated: bool = False
    note: str = ""
