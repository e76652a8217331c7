"""AutoWeather: the real source while it answers, simulated weather while it can't.

Time is a fake clock the tests move by hand, so nothing sleeps. Every behaviour is
checked through both the sync and the async methods (`flavour`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import httpx
import pytest
import respx

from agent.config import AgentSettings
from agent.weather import (
    AutoWeather,
    CurrentConditions,
    DailyForecast,
    Forecast,
    OpenMeteoWeather,
    Place,
    SimulatedWeather,
    Units,
    WeatherError,
    WeatherSource,
    WeatherUnavailableError,
    make_weather_source,
)
from agent.weather.auto import FALLBACK_NOTE
from agent.weather.open_meteo import FORECAST_URL, GEOCODING_URL

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "open_meteo"

Flavour = Literal["sync", "async"]

LONDON = Place("London", 51.50853, -0.12574, "United Kingdom", "England", "Europe/London")
PARIS = Place("Paris", 48.85341, 2.3488, "France", "Île-de-France", "Europe/Paris")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSource:
    """A weather source that answers with canned data, or raises `failure` when set."""

    def __init__(self, name: str, place: Place | None, temperature: float) -> None:
        self.name = name
        self.place = place
        self.temperature = temperature
        self.failure: WeatherError | None = None
        self.calls: list[str] = []

    def _answer(self, call: str) -> None:
        self.calls.append(call)
        if self.failure is not None:
            raise self.failure

    def _forecast(self, place: Place, units: Units, days: int) -> Forecast:
        current = CurrentConditions("2025-10-14T15:45", self.temperature, 1.0, 50, 5.0, 0, "x")
        daily = [DailyForecast(date(2025, 10, 14), 2.0, 1.0, 0.0, 0, 5.0, 0, "x")] * days
        return Forecast(place, units, self.name, current, daily)

    def lookup(self, query: str) -> Place | None:
        self._answer("lookup")
        return self.place

    async def alookup(self, query: str) -> Place | None:
        self._answer("alookup")
        return self.place

    def forecast(self, place: Place, units: Units, days: int) -> Forecast:
        self._answer("forecast")
        return self._forecast(place, units, days)

    async def aforecast(self, place: Place, units: Units, days: int) -> Forecast:
        self._answer("aforecast")
        return self._forecast(place, units, days)


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    value: Flavour = request.param
    return value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def primary() -> FakeSource:
    return FakeSource("open-meteo", LONDON, 14.2)


@pytest.fixture
def fallback() -> FakeSource:
    return FakeSource("simulated", PARIS, -3.0)


@pytest.fixture
def auto(primary: FakeSource, fallback: FakeSource, clock: FakeClock) -> AutoWeather:
    return AutoWeather(primary, fallback, retry_after=60, clock=clock)


async def lookup(source: WeatherSource, flavour: Flavour, query: str = "London") -> Place | None:
    if flavour == "sync":
        return source.lookup(query)
    return await source.alookup(query)


async def forecast(source: WeatherSource, flavour: Flavour, place: Place = LONDON) -> Forecast:
    if flavour == "sync":
        return source.forecast(place, "metric", 2)
    return await source.aforecast(place, "metric", 2)


OUTAGE = WeatherUnavailableError("I couldn't reach the weather service Open-Meteo.")


async def test_uses_the_primary_while_it_answers(
    auto: AutoWeather, primary: FakeSource, fallback: FakeSource, flavour: Flavour
) -> None:
    assert await lookup(auto, flavour) == LONDON
    result = await forecast(auto, flavour)

    assert (result.source, result.current.temperature, result.note) == ("open-meteo", 14.2, "")
    assert len(primary.calls) == 2
    assert fallback.calls == []
    assert not auto.using_fallback


async def test_forecast_falls_back_with_a_note_when_the_primary_is_down(
    auto: AutoWeather,
    primary: FakeSource,
    fallback: FakeSource,
    flavour: Flavour,
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary.failure = OUTAGE

    with caplog.at_level(logging.WARNING, logger="agent.weather.auto"):
        result = await forecast(auto, flavour)

    assert (result.source, result.current.temperature) == ("simulated", -3.0)
    assert result.note == FALLBACK_NOTE
    assert result.place == LONDON  # the fallback forecasts the place it was asked about
    assert auto.using_fallback
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "open-meteo unavailable (I couldn't reach the weather service Open-Meteo.); "
        "using simulated weather for the next 60 s"
    )


async def test_lookup_falls_back_when_the_primary_is_down(
    auto: AutoWeather, primary: FakeSource, fallback: FakeSource, flavour: Flavour
) -> None:
    primary.failure = OUTAGE

    assert await lookup(auto, flavour) == PARIS
    assert auto.using_fallback
    assert len(primary.calls) == len(fallback.calls) == 1


async def test_stays_on_the_fallback_for_retry_after_then_retries_the_primary(
    auto: AutoWeather,
    primary: FakeSource,
    fallback: FakeSource,
    clock: FakeClock,
    flavour: Flavour,
) -> None:
    primary.failure = OUTAGE
    await forecast(auto, flavour)
    assert len(primary.calls) == 1

    primary.failure = None  # back up, but the outage window is not over yet
    clock.advance(59.9)
    assert await lookup(auto, flavour) == PARIS
    assert (await forecast(auto, flavour)).note == FALLBACK_NOTE
    assert len(primary.calls) == 1  # not even tried
    assert auto.using_fallback

    clock.advance(0.1)
    assert not auto.using_fallback
    assert await lookup(auto, flavour) == LONDON
    result = await forecast(auto, flavour)
    assert (result.source, result.note) == ("open-meteo", "")
    assert len(primary.calls) == 3


async def test_a_new_outage_after_recovery_starts_a_new_window_and_is_logged_again(
    auto: AutoWeather,
    primary: FakeSource,
    clock: FakeClock,
    flavour: Flavour,
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary.failure = OUTAGE
    with caplog.at_level(logging.WARNING, logger="agent.weather.auto"):
        await forecast(auto, flavour)
        clock.advance(30)
        await forecast(auto, flavour)  # still inside the window: no retry, no new log
        clock.advance(30)
        await forecast(auto, flavour)  # window over: retried, failed again
        clock.advance(59)

    assert len(primary.calls) == 2
    assert auto.using_fallback  # the second failure opened a fresh 60 s window
    assert len(caplog.records) == 2


@pytest.mark.parametrize("method", ["lookup", "forecast"])
async def test_a_refusal_is_not_hidden_by_the_fallback(
    auto: AutoWeather, primary: FakeSource, fallback: FakeSource, flavour: Flavour, method: str
) -> None:
    primary.failure = WeatherError("Open-Meteo refused the request: Latitude must be in range.")

    with pytest.raises(WeatherError, match="refused the request") as raised:
        await (lookup(auto, flavour) if method == "lookup" else forecast(auto, flavour))

    assert not isinstance(raised.value, WeatherUnavailableError)
    assert fallback.calls == []
    assert not auto.using_fallback


async def test_a_place_the_primary_does_not_know_is_not_looked_up_elsewhere(
    auto: AutoWeather, primary: FakeSource, fallback: FakeSource, flavour: Flavour
) -> None:
    primary.place = None

    assert await lookup(auto, flavour, "Xyzzyville") is None
    assert fallback.calls == []


# --- with the real sources --------------------------------------------------------------


def recorded(name: str) -> httpx.Response:
    return httpx.Response(200, json=json.loads((FIXTURES / name).read_text(encoding="utf-8")))


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(GEOCODING_URL, name="geocoding").mock(
            return_value=recorded("geocoding_london.json")
        )
        router.get(FORECAST_URL, name="forecast").mock(
            return_value=recorded("forecast_london_metric.json")
        )
        yield router


@pytest.fixture
def real_auto(clock: FakeClock) -> AutoWeather:
    simulated = SimulatedWeather(clock=lambda: datetime(2025, 10, 14, 14, 45, tzinfo=UTC))
    return AutoWeather(OpenMeteoWeather(), simulated, retry_after=60, clock=clock)


async def test_real_sources_open_meteo_when_it_answers(
    api: respx.MockRouter, real_auto: AutoWeather, flavour: Flavour
) -> None:
    place = await lookup(real_auto, flavour)
    assert place is not None
    result = await forecast(real_auto, flavour, place)

    assert (result.source, result.simulated, result.current.temperature) == (
        "open-meteo",
        False,
        14.2,
    )


@pytest.mark.parametrize(
    "outage",
    [httpx.ConnectError("[Errno 101] Network is unreachable"), httpx.Response(503)],
    ids=["unreachable", "http-503"],
)
async def test_real_sources_fall_back_to_simulated_weather(
    api: respx.MockRouter,
    real_auto: AutoWeather,
    flavour: Flavour,
    outage: httpx.ConnectError | httpx.Response,
) -> None:
    if isinstance(outage, httpx.Response):
        api["forecast"].mock(return_value=outage)
    else:
        api["forecast"].mock(side_effect=outage)
    place = await lookup(real_auto, flavour)
    assert place is not None

    result = await forecast(real_auto, flavour, place)

    assert (result.source, result.simulated, result.note) == ("simulated", True, FALLBACK_NOTE)
    assert result.place.label == "London, England, United Kingdom"
    assert len(result.daily) == 2
    # While Open-Meteo is considered down, even lookups stay off the network.
    await lookup(real_auto, flavour, "Paris")
    assert api["geocoding"].call_count == 1


async def test_real_sources_a_400_reaches_the_caller(
    api: respx.MockRouter, real_auto: AutoWeather, flavour: Flavour
) -> None:
    error_body = json.loads((FIXTURES / "forecast_error_400.json").read_text(encoding="utf-8"))
    api["forecast"].mock(return_value=httpx.Response(400, json=error_body))

    with pytest.raises(WeatherError, match="Latitude must be in range") as raised:
        await forecast(real_auto, flavour)

    assert not isinstance(raised.value, WeatherUnavailableError)
    assert not real_auto.using_fallback


def test_weather_provider_auto_builds_open_meteo_with_simulated_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPEN_METEO_GEOCODING_URL", raising=False)
    settings = AgentSettings(
        _env_file=None,
        weather_provider="auto",
        open_meteo_retry_after=5,
        open_meteo_forecast_url="http://127.0.0.1:9/v1/forecast",
    )

    source = make_weather_source(settings)

    assert isinstance(source, AutoWeather)
    assert source.retry_after == 5
    assert isinstance(source.primary, OpenMeteoWeather)
    assert source.primary.forecast_url == "http://127.0.0.1:9/v1/forecast"
    assert source.primary.geocoding_url == GEOCODING_URL
    assert isinstance(source.fallback, SimulatedWeather)
