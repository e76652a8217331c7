"""Weather sources: Open-Meteo (real), simulated (offline) and auto (real with fallback)."""

from __future__ import annotations

from agent.config import AgentSettings
from agent.weather.auto import AutoWeather
from agent.weather.base import MAX_FORECAST_DAYS, WeatherSource
from agent.weather.models import (
    CurrentConditions,
    DailyForecast,
    Forecast,
    Place,
    Units,
    WeatherError,
    WeatherUnavailableError,
)
from agent.weather.open_meteo import OpenMeteoWeather
from agent.weather.simulated import SimulatedWeather


def make_weather_source(settings: AgentSettings) -> WeatherSource:
    """The source named by `WEATHER_PROVIDER`. Creates no connections."""
    if settings.weather_provider == "simulated":
        return SimulatedWeather()
    open_meteo = OpenMeteoWeather(
        geocoding_url=settings.open_meteo_geocoding_url,
        forecast_url=settings.open_meteo_forecast_url,
        timeout=settings.open_meteo_timeout,
    )
    if settings.weather_provider == "open-meteo":
        return open_meteo
    return AutoWeather(open_meteo, SimulatedWeather(), retry_after=settings.open_meteo_retry_after)


__all__ = [
    "MAX_FORECAST_DAYS",
    "AutoWeather",
    "CurrentConditions",
    "DailyForecast",
    "Forecast",
    "OpenMeteoWeather",
    "Place",
    "SimulatedWeather",
    "Units",
    "WeatherError",
    "WeatherSource",
    "WeatherUnavailableError",
    "make_weather_source",
]
