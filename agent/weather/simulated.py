"""Simulated weather: deterministic, offline and plausible, for every place and date.

The same place, date and hour always give the same numbers, in every process, so
tests and demos are repeatable. Temperatures follow latitude and season
(hemispheres mirrored); conditions, wind and humidity come from a hash of the
place and date. Every forecast is marked `simulated` so no one mistakes it for
an observation.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.weather.base import MAX_FORECAST_DAYS
from agent.weather.gazetteer import gazetteer
from agent.weather.models import CurrentConditions, DailyForecast, Forecast, Place, Units
from agent.weather.wmo import describe

SIMULATED_NOTE = "Simulated weather: plausible but not a real observation."

# (WMO code, weight): dry conditions are the most common, storms the rarest.
_CONDITIONS: list[tuple[int, int]] = [
    (0, 18), (1, 16), (2, 16), (3, 12), (45, 4), (51, 5), (61, 8),
    (63, 5), (65, 2), (80, 6), (81, 3), (95, 2),
]  # fmt: skip
_RAIN_TO_SNOW = {51: 71, 61: 71, 63: 73, 65: 75, 80: 85, 81: 86, 95: 73}


def _unit_hash(*parts: object) -> float:
    """A stable number in [0, 1) for the given parts (Python's hash() varies per process)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _local_now(place: Place, now: datetime) -> datetime:
    try:
        return now.astimezone(ZoneInfo(place.timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return now.astimezone(UTC)


class SimulatedWeather:
    """A weather source that needs no network: gazetteer geocoding, synthetic weather."""

    name = "simulated"

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))

    def lookup(self, query: str) -> Place | None:
        return gazetteer().lookup(query)

    async def alookup(self, query: str) -> Place | None:
        return self.lookup(query)

    def forecast(self, place: Place, units: Units, days: int) -> Forecast:
        now = _local_now(place, self._clock())
        today = now.date()
        daily = [
            self._day(place, today + timedelta(days=i)) for i in range(min(days, MAX_FORECAST_DAYS))
        ]
        current = self._current(place, now)
        if units == "imperial":
            current, daily = _current_imperial(current), [_day_imperial(d) for d in daily]
        return Forecast(
            place=place,
            units=units,
            source=self.name,
            current=current,
            daily=daily,
            simulated=True,
            note=SIMULATED_NOTE,
        )

    async def aforecast(self, place: Place, units: Units, days: int) -> Forecast:
        return self.forecast(place, units, days)

    def _mean_temperature(self, place: Place, day: date) -> float:
        lat = abs(place.latitude)
        annual_mean = 29.0 - 0.42 * lat
        # Warmest around 20 July in the north, 20 January in the south.
        season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 201) / 365.25)
        if place.latitude < 0:
            season = -season
        swing = 0.17 * lat
        noise = (_unit_hash(place.latitude, place.longitude, day, "t") - 0.5) * 6
        return annual_mean + swing * season + noise

    def _day(self, place: Place, day: date) -> DailyForecast:
        mean = self._mean_temperature(place, day)
        spread = 3 + 4 * _unit_hash(place.latitude, place.longitude, day, "spread")
        roll = _unit_hash(place.latitude, place.longitude, day, "code") * sum(
            w for _, w in _CONDITIONS
        )
        code = _CONDITIONS[-1][0]
        for candidate, weight in _CONDITIONS:
            if roll < weight:
                code = candidate
                break
            roll -= weight
        if mean < 1 and code in _RAIN_TO_SNOW:
            code = _RAIN_TO_SNOW[code]
        wet = code >= 51
        precipitation = round(0.5 + 12 * _unit_hash(place, day, "mm"), 1) if wet else 0.0
        probability = (
            int(55 + 40 * _unit_hash(place, day, "p"))
            if wet
            else int(15 * _unit_hash(place, day, "p"))
        )
        wind = round(5 + 30 * _unit_hash(place.latitude, place.longitude, day, "wind"), 1)
        return DailyForecast(
            date=day,
            temperature_max=round(mean + spread, 1),
            temperature_min=round(mean - spread, 1),
            precipitation=precipitation,
            precipitation_probability=probability,
            wind_speed_max=wind,
            weather_code=code,
            description=describe(code),
        )

    def _current(self, place: Place, now: datetime) -> CurrentConditions:
        day = self._day(place, now.date())
        # Coldest near 05:00, warmest near 15:00 local time.
        phase = (math.cos(2 * math.pi * (now.hour - 15) / 24) + 1) / 2
        temperature = day.temperature_min + (day.temperature_max - day.temperature_min) * phase
        wind = round(day.wind_speed_max * (0.4 + 0.4 * _unit_hash(place, now.hour, "w")), 1)
        humidity = int(45 + 40 * _unit_hash(place, now.date(), now.hour, "h")) + (
            10 if day.weather_code >= 45 else 0
        )
        feels_like = temperature - (wind / 10 if temperature < 15 else 0)
        return CurrentConditions(
            time=now.strftime("%Y-%m-%dT%H:%M"),
            temperature=round(temperature, 1),
            feels_like=round(feels_like, 1),
            humidity=min(humidity, 100),
            wind_speed=wind,
            weather_code=day.weather_code,
            description=day.description,
        )


def _to_f(celsius: float) -> float:
    return round(celsius * 9 / 5 + 32, 1)


def _to_mph(kmh: float) -> float:
    return round(kmh / 1.609344, 1)


def _current_imperial(c: CurrentConditions) -> CurrentConditions:
    return replace(
        c,
        temperature=_to_f(c.temperature),
        feels_like=_to_f(c.feels_like),
        wind_speed=_to_mph(c.wind_speed),
    )


def _day_imperial(d: DailyForecast) -> DailyForecast:
    return replace(
        d,
        temperature_max=_to_f(d.temperature_max),
        temperature_min=_to_f(d.temperature_min),
        precipitation=round(d.precipitation / 25.4, 2),
        wind_speed_max=_to_mph(d.wind_speed_max),
    )
