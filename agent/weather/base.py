"""The interface every weather source implements, sync and async."""

from __future__ import annotations

from typing import Protocol

from agent.weather.models import Forecast, Place, Units

MAX_FORECAST_DAYS = 7


class WeatherSource(Protocol):
    """Geocodes place names and returns current conditions plus a daily forecast.

    Both a sync and an async flavour exist because LangGraph runs tools either way
    (`graph.invoke` in a notebook, `graph.ainvoke` in the server). Failures raise
    `WeatherError` subclasses whose message is a sentence for the user.
    """

    name: str

    def lookup(self, query: str) -> Place | None: ...

    async def alookup(self, query: str) -> Place | None: ...

    def forecast(self, place: Place, units: Units, days: int) -> Forecast: ...

    async def aforecast(self, place: Place, units: Units, days: int) -> Forecast: ...
