"""Open-Meteo client: geocoding and forecast APIs (no key needed).

Request building and response parsing are plain functions shared by the sync and
async paths, so the two differ only in how the HTTP call is made.
Docs: https://open-meteo.com/en/docs and https://open-meteo.com/en/docs/geocoding-api
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from typing import Any

import httpx

from agent.weather.base import MAX_FORECAST_DAYS
from agent.weather.gazetteer import us_states
from agent.weather.models import (
    CurrentConditions,
    DailyForecast,
    Forecast,
    Place,
    Units,
    WeatherError,
    WeatherUnavailableError,
)
from agent.weather.wmo import describe

log = logging.getLogger(__name__)

GEOCODING_URL = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST_URL = "https://api.open-meteo.com/v1/forecast"

CURRENT_FIELDS = (
    "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,wind_speed_10m"
)
DAILY_FIELDS = (
    "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,"
    "precipitation_probability_max,wind_speed_10m_max"
)


def geocoding_params(query: str) -> dict[str, str | int]:
    name, _, qualifier = (part.strip() for part in query.partition(","))
    params: dict[str, str | int] = {"name": name, "count": 10, "language": "en", "format": "json"}
    code = qualifier.upper()
    # "Paris, TX" names a US state, not a country: filter on the results instead.
    if len(code) == 2 and code.isalpha() and code not in us_states():
        params["countryCode"] = code
    return params


def parse_places(payload: dict[str, Any], query: str) -> Place | None:
    """The best geocoding result; a "City, Region/Country" query prefers a matching one."""
    results: list[dict[str, Any]] = payload.get("results") or []
    if not results:
        return None
    qualifier = query.partition(",")[2].strip()
    wanted = {qualifier.casefold()} - {""}
    state = us_states().get(qualifier.upper())
    if state:
        wanted.add(state.casefold())
    best = results[0]
    for result in results if wanted else ():
        names = {str(result.get(k, "")).casefold() for k in ("country", "admin1", "country_code")}
        if wanted & names:
            best = result
            break
    try:
        return Place(
            name=str(best["name"]),
            latitude=float(best["latitude"]),
            longitude=float(best["longitude"]),
            country=best.get("country", ""),
            region=best.get("admin1", ""),
            timezone=best.get("timezone") or "UTC",
            population=int(best.get("population") or 0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WeatherUnavailableError(
            "Open-Meteo sent a place I could not read, so I can't report the weather right now."
        ) from exc


def forecast_params(place: Place, units: Units, days: int) -> dict[str, str | int | float]:
    params: dict[str, str | int | float] = {
        "latitude": place.latitude,
        "longitude": place.longitude,
        "current": CURRENT_FIELDS,
        "daily": DAILY_FIELDS,
        "timezone": "auto",
        "forecast_days": max(1, min(days, MAX_FORECAST_DAYS)),
    }
    if units == "imperial":
        params.update(
            temperature_unit="fahrenheit", wind_speed_unit="mph", precipitation_unit="inch"
        )
    return params


def _complete_days(daily: dict[str, Any]) -> list[str]:
    """The dates with data: Open-Meteo sends nulls for days beyond a model's range."""
    days: list[str] = []
    for i, day in enumerate(daily.get("time", [])):
        if daily["temperature_2m_max"][i] is None or daily["temperature_2m_min"][i] is None:
            break
        days.append(day)
    return days


def parse_forecast(payload: dict[str, Any], place: Place, units: Units) -> Forecast:
    try:
        now = payload["current"]
        current = CurrentConditions(
            time=now["time"],
            temperature=float(now["temperature_2m"]),
            feels_like=float(now.get("apparent_temperature", now["temperature_2m"])),
            humidity=int(now.get("relative_humidity_2m") or 0),
            wind_speed=float(now.get("wind_speed_10m") or 0.0),
            weather_code=int(now["weather_code"]),
            description=describe(now["weather_code"]),
        )
        daily_payload = payload.get("daily") or {}
        daily = [
            DailyForecast(
                date=date.fromisoformat(day),
                temperature_max=float(daily_payload["temperature_2m_max"][i]),
                temperature_min=float(daily_payload["temperature_2m_min"][i]),
                precipitation=float(daily_payload["precipitation_sum"][i] or 0.0),
                precipitation_probability=int(
                    daily_payload["precipitation_probability_max"][i] or 0
                ),
                wind_speed_max=float(daily_payload["wind_speed_10m_max"][i] or 0.0),
                weather_code=int(daily_payload["weather_code"][i] or 0),
                description=describe(daily_payload["weather_code"][i]),
            )
            for i, day in enumerate(_complete_days(daily_payload))
        ]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise WeatherUnavailableError(
            "Open-Meteo sent a forecast I could not read, so I can't report the weather right now."
        ) from exc
    if payload.get("timezone"):
        place = replace(place, timezone=payload["timezone"])
    return Forecast(place=place, units=units, source="open-meteo", current=current, daily=daily)


def _checked_json(response: httpx.Response) -> dict[str, Any]:
    """The JSON body, or a WeatherError that says what went wrong in plain words."""
    if response.status_code >= 500 or response.status_code == 429:
        raise WeatherUnavailableError(
            f"The weather service Open-Meteo is having trouble (HTTP {response.status_code}); "
            "please try again in a moment."
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise WeatherUnavailableError("Open-Meteo sent an unreadable answer.") from exc
    if response.status_code >= 400 or (isinstance(body, dict) and body.get("error")):
        reason = f"HTTP {response.status_code}"
        if isinstance(body, dict):
            reason = str(body.get("reason", reason)).rstrip(". ")
        raise WeatherError(f"Open-Meteo refused the request: {reason}.")
    if not isinstance(body, dict):
        raise WeatherUnavailableError("Open-Meteo sent an unexpected answer.")
    return body


def _unreachable(exc: httpx.HTTPError) -> WeatherUnavailableError:
    log.warning("Open-Meteo request failed: %s: %s", type(exc).__name__, exc)
    return WeatherUnavailableError(
        "I couldn't reach the weather service Open-Meteo, so I can't get real weather right now."
    )


class OpenMeteoWeather:
    """Real forecasts from Open-Meteo. HTTP clients are created on first use."""

    name = "open-meteo"

    def __init__(
        self,
        *,
        geocoding_url: str = GEOCODING_URL,
        forecast_url: str = FORECAST_URL,
        timeout: float = 5.0,
    ) -> None:
        self.geocoding_url = geocoding_url
        self.forecast_url = forecast_url
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 3.0))
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, headers=_HEADERS)
        return self._client

    @property
    def async_client(self) -> httpx.AsyncClient:
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(timeout=self._timeout, headers=_HEADERS)
        return self._async_client

    def _get(self, url: str, params: Any) -> dict[str, Any]:
        try:
            return _checked_json(self.client.get(url, params=params))
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc

    async def _aget(self, url: str, params: Any) -> dict[str, Any]:
        try:
            return _checked_json(await self.async_client.get(url, params=params))
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc

    def lookup(self, query: str) -> Place | None:
        return parse_places(self._get(self.geocoding_url, geocoding_params(query)), query)

    async def alookup(self, query: str) -> Place | None:
        return parse_places(await self._aget(self.geocoding_url, geocoding_params(query)), query)

    def forecast(self, place: Place, units: Units, days: int) -> Forecast:
        payload = self._get(self.forecast_url, forecast_params(place, units, days))
        return parse_forecast(payload, place, units)

    async def aforecast(self, place: Place, units: Units, days: int) -> Forecast:
        payload = await self._aget(self.forecast_url, forecast_params(place, units, days))
        return parse_forecast(payload, place, units)

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._async_client is not None:
            await self._async_client.aclose()
        self._client = self._async_client = None


_HEADERS = {"User-Agent": "weather-agent/0.1 (LangGraph weather agent)"}
