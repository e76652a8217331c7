"""`WEATHER_PROVIDER=auto`: Open-Meteo, and simulated weather while it can't be reached.

After a failure the real source is left alone for `retry_after` seconds, so an
offline machine answers instantly instead of waiting on the network every turn.
Answers served by the fallback say so, and the switch is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from agent.weather.base import WeatherSource
from agent.weather.models import Forecast, Place, Units, WeatherUnavailableError

log = logging.getLogger(__name__)


FALLBACK_NOTE = (
    "Open-Meteo could not be reached, so this is simulated weather, not a real observation."
)


class AutoWeather:
    """Tries `primary`; on `WeatherUnavailableError` answers from `fallback` instead."""

    name = "auto"

    def __init__(
        self,
        primary: WeatherSource,
        fallback: WeatherSource,
        *,
        retry_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0

    @property
    def using_fallback(self) -> bool:
        return self._clock() < self._down_until

    def _mark_down(self, error: WeatherUnavailableError) -> None:
        if not self.using_fallback:
            log.warning(
                "%s unavailable (%s); using %s weather for the next %.0f s",
                self.primary.name,
                error,
                self.fallback.name,
                self.retry_after,
            )
        self._down_until = self._clock() + self.retry_after

    def _noted(self, forecast: Forecast) -> Forecast:
        return replace(forecast, note=FALLBACK_NOTE)

    def lookup(self, query: str) -> Place | None:
        if not self.using_fallback:
            try:
                return self.primary.lookup(query)
            except WeatherUnavailableError as error:
                self._mark_down(error)
        return self.fallback.lookup(query)

    async def alookup(self, query: str) -> Place | None:
        if not self.using_fallback:
            try:
                return await self.primary.alookup(query)
            except WeatherUnavailableError as error:
                self._mark_down(error)
        return await self.fallback.alookup(query)

    def forecast(self, place: Place, units: Units, days: int) -> Forecast:
        if not self.using_fallback:
            try:
                return self.primary.forecast(place, units, days)
            except WeatherUnavailableError as error:
                self._mark_down(error)
        return self._noted(self.fallback.forecast(place, units, days))

    async def aforecast(self, place: Place, units: Units, days: int) -> Forecast:
        if not self.using_fallback:
            try:
                return await self.primary.aforecast(place, units, days)
            except WeatherUnavailableError as error:
                self._mark_down(error)
        return self._noted(await self.fallback.aforecast(place, units, days))
