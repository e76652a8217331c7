"""The Open-Meteo client against recorded API answers (respx stands in for the network).

Every test runs through both the sync and the async path: `flavour` picks which.
The fake endpoints below answer like the real ones do: geocoding filters the recorded
results by `name`, `countryCode` and `count`, and the forecast endpoint picks the
recording for the requested units and keeps only `forecast_days` days.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any, Literal

import httpx
import pytest
import respx

from agent.tools import WeatherTools, current_report, forecast_report
from agent.weather import (
    Forecast,
    OpenMeteoWeather,
    Place,
    Units,
    WeatherError,
    WeatherUnavailableError,
)
from agent.weather.open_meteo import FORECAST_URL, GEOCODING_URL, parse_places
from tests.agent.fake_open_meteo import load_fixture

Flavour = Literal["sync", "async"]

LONDON = Place(
    name="London",
    latitude=51.50853,
    longitude=-0.12574,
    country="United Kingdom",
    region="England",
    timezone="Europe/London",
    population=8961989,
)


@pytest.fixture
async def source() -> AsyncIterator[OpenMeteoWeather]:
    weather = OpenMeteoWeather()
    yield weather
    await weather.aclose()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    value: Flavour = request.param
    return value


async def lookup(source: OpenMeteoWeather, flavour: Flavour, query: str) -> Place | None:
    if flavour == "sync":
        return source.lookup(query)
    return await source.alookup(query)


async def forecast(
    source: OpenMeteoWeather, flavour: Flavour, place: Place, units: Units, days: int
) -> Forecast:
    if flavour == "sync":
        return source.forecast(place, units, days)
    return await source.aforecast(place, units, days)


async def call(source: OpenMeteoWeather, flavour: Flavour, endpoint: str) -> object:
    """One request to `endpoint` ("geocoding" or "forecast") about London."""
    if endpoint == "geocoding":
        return await lookup(source, flavour, "London")
    return await forecast(source, flavour, LONDON, "metric", 1)


def sent_params(route: respx.Route) -> dict[str, str]:
    return dict(route.calls.last.request.url.params)


# --- geocoding ------------------------------------------------------------------------


async def test_lookup_london_is_the_uk_capital(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    place = await lookup(source, flavour, "London")

    assert place is not None
    assert place == LONDON
    assert place.label == "London, England, United Kingdom"
    assert api["geocoding"].call_count == 1
    assert not api["forecast"].called


async def test_lookup_sends_the_documented_query(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    await lookup(source, flavour, "  London ")

    request = api["geocoding"].calls.last.request
    assert request.url.copy_with(query=None) == httpx.URL(GEOCODING_URL)
    assert sent_params(api["geocoding"]) == {
        "name": "London",
        "count": "10",
        "language": "en",
        "format": "json",
    }
    assert request.headers["User-Agent"].startswith("weather-agent/")


@pytest.mark.parametrize(
    ("query", "country_code", "expected"),
    [
        ("London, CA", None, ("Ontario", "Canada", "America/Toronto")),  # CA: also a state
        ("london, gb", "GB", ("England", "United Kingdom", "Europe/London")),
        ("London, Ontario", None, ("Ontario", "Canada", "America/Toronto")),
        ("London, Kentucky", None, ("Kentucky", "United States", "America/New_York")),
        ("London, Texas", None, ("Texas", "United States", "America/Chicago")),
        ("London, United States", None, ("Ohio", "United States", "America/New_York")),
    ],
)
async def test_lookup_honours_a_country_or_region_qualifier(
    api: respx.MockRouter,
    source: OpenMeteoWeather,
    flavour: Flavour,
    query: str,
    country_code: str | None,
    expected: tuple[str, str, str],
) -> None:
    place = await lookup(source, flavour, query)

    assert place is not None
    assert (place.region, place.country, place.timezone) == expected
    params = sent_params(api["geocoding"])
    assert params["name"].casefold() == "london"  # the qualifier is not part of the name
    assert params.get("countryCode") == country_code


@pytest.mark.parametrize(
    ("query", "region", "country"),
    [
        ("London", "England", "United Kingdom"),
        ("London, CA", "Ontario", "Canada"),  # a country code, not California
        ("London, california", "California", "United States"),
        ("London, Arkansas", "Arkansas", "United States"),
        ("London,US", "Ohio", "United States"),
        ("London, Canada", "Ontario", "Canada"),
    ],
)
def test_parse_places_prefers_the_result_matching_the_qualifier(
    query: str, region: str, country: str
) -> None:
    place = parse_places(load_fixture("geocoding_london.json"), query)

    assert place is not None
    assert (place.name, place.region, place.country) == ("London", region, country)


async def test_lookup_with_a_us_state_abbreviation(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    place = await lookup(source, flavour, "London, TX")

    assert place is not None
    assert (place.region, place.country) == ("Texas", "United States")


async def test_unknown_place_is_none_and_the_tool_says_so(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    assert await lookup(source, flavour, "Xyzzyville") is None
    assert sent_params(api["geocoding"])["name"] == "Xyzzyville"

    tools = WeatherTools(source)
    if flavour == "sync":
        now, ahead = tools.current("Xyzzyville"), tools.forecast("Xyzzyville", days=2)
    else:
        now, ahead = await tools.acurrent("Xyzzyville"), await tools.aforecast("Xyzzyville")
    for result in (now, ahead):
        assert list(result) == ["error"]
        assert result["error"].startswith("I couldn't find a place called 'Xyzzyville'.")
    assert not api["forecast"].called


def test_empty_geocoding_answer_has_no_results_key() -> None:
    empty = load_fixture("geocoding_empty.json")
    assert "results" not in empty
    assert parse_places(empty, "Xyzzyville") is None
    assert parse_places({"results": [], "generationtime_ms": 0.5}, "Xyzzyville") is None


# --- forecast -------------------------------------------------------------------------


async def test_forecast_metric_current_and_seven_days(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    result = await forecast(source, flavour, LONDON, "metric", 7)

    assert (result.source, result.units, result.simulated, result.note) == (
        "open-meteo",
        "metric",
        False,
        "",
    )
    assert result.place == LONDON
    now = result.current
    assert now.time == "2025-10-14T15:45"
    assert (now.temperature, now.feels_like, now.humidity, now.wind_speed) == (
        14.2,
        12.6,
        71,
        13.7,
    )
    assert (now.weather_code, now.description) == (3, "overcast")

    assert [d.date for d in result.daily] == [date(2025, 10, 14 + i) for i in range(7)]
    assert [d.description for d in result.daily] == [
        "overcast",
        "slight rain",
        "slight rain showers",
        "partly cloudy",
        "overcast",
        "moderate rain",
        "mainly clear",
    ]
    tomorrow = result.daily[1]
    assert (tomorrow.temperature_min, tomorrow.temperature_max) == (10.2, 13.8)
    assert (tomorrow.precipitation, tomorrow.precipitation_probability) == (4.6, 78)
    assert (tomorrow.wind_speed_max, tomorrow.weather_code) == (24.8, 61)
    assert result.daily[0].precipitation == 0.0


async def test_forecast_sends_the_documented_query(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    await forecast(source, flavour, LONDON, "metric", 7)

    request = api["forecast"].calls.last.request
    assert request.url.copy_with(query=None) == httpx.URL(FORECAST_URL)
    assert sent_params(api["forecast"]) == {
        "latitude": "51.50853",
        "longitude": "-0.12574",
        "current": "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,"
        "wind_speed_10m",
        "daily": "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,"
        "precipitation_probability_max,wind_speed_10m_max",
        "timezone": "auto",
        "forecast_days": "7",
    }


async def test_forecast_imperial_asks_for_and_reports_imperial_units(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    result = await forecast(source, flavour, LONDON, "imperial", 7)

    params = sent_params(api["forecast"])
    assert {
        k: params[k] for k in ("temperature_unit", "wind_speed_unit", "precipitation_unit")
    } == {
        "temperature_unit": "fahrenheit",
        "wind_speed_unit": "mph",
        "precipitation_unit": "inch",
    }
    assert (result.units, result.current.temperature, result.current.wind_speed) == (
        "imperial",
        57.6,
        8.5,
    )
    assert len(result.daily) == 7
    assert (result.daily[1].temperature_max, result.daily[1].precipitation) == (56.8, 0.181)

    now = current_report(result)
    assert (now["temperature"], now["feels_like"], now["wind"]) == ("57.6°F", "54.7°F", "8.5 mph")
    tomorrow = forecast_report(result, start_day=1, days=1)["days"]
    assert tomorrow == [
        {
            "date": "2025-10-15",
            "day": "tomorrow",
            "conditions": "slight rain",
            "high": "56.8°F",
            "low": "50.4°F",
            "precipitation": "0.181 in",
            "precipitation_chance": "78%",
            "wind_max": "15.4 mph",
        }
    ]


async def test_metric_request_has_no_unit_overrides(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    await forecast(source, flavour, LONDON, "metric", 3)

    params = sent_params(api["forecast"])
    assert not {"temperature_unit", "wind_speed_unit", "precipitation_unit"} & set(params)


@pytest.mark.parametrize(("days", "sent", "received"), [(2, "2", 2), (0, "1", 1), (30, "7", 7)])
async def test_forecast_days_are_clamped_to_what_the_api_offers(
    api: respx.MockRouter,
    source: OpenMeteoWeather,
    flavour: Flavour,
    days: int,
    sent: str,
    received: int,
) -> None:
    result = await forecast(source, flavour, LONDON, "metric", days)

    assert sent_params(api["forecast"])["forecast_days"] == sent
    assert len(result.daily) == received


async def test_forecast_takes_the_timezone_open_meteo_resolved(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    bare = Place(name="London", latitude=51.5, longitude=-0.12)  # timezone defaults to UTC

    result = await forecast(source, flavour, bare, "metric", 1)

    assert result.place.timezone == "Europe/London"
    assert (result.place.name, result.place.latitude) == ("London", 51.5)


# --- failures -------------------------------------------------------------------------

SERVER_ERROR_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


@pytest.mark.parametrize(
    ("status", "title"), [(500, "500 Internal Server Error"), (503, "503 Service Unavailable")]
)
@pytest.mark.parametrize("endpoint", ["geocoding", "forecast"])
async def test_server_errors_mean_unavailable(
    api: respx.MockRouter,
    source: OpenMeteoWeather,
    flavour: Flavour,
    endpoint: str,
    status: int,
    title: str,
) -> None:
    api[endpoint].mock(
        return_value=httpx.Response(
            status, text=SERVER_ERROR_PAGE.format(title), headers={"Content-Type": "text/html"}
        )
    )

    with pytest.raises(WeatherUnavailableError) as raised:
        await call(source, flavour, endpoint)

    assert str(raised.value) == (
        f"The weather service Open-Meteo is having trouble (HTTP {status}); "
        "please try again in a moment."
    )


async def test_forecast_400_is_a_refusal_with_the_reason(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    api["forecast"].mock(
        return_value=httpx.Response(400, json=load_fixture("forecast_error_400.json"))
    )

    with pytest.raises(WeatherError) as raised:
        await forecast(source, flavour, LONDON, "metric", 1)

    assert not isinstance(raised.value, WeatherUnavailableError)  # not a reason to fall back
    message = str(raised.value)
    assert message.startswith("Open-Meteo refused the request: ")
    assert "Latitude must be in range of -90 to 90°. Given: 91.0" in message


async def test_geocoding_400_is_a_refusal_with_the_reason(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    reason = "Parameter count must be between 1 and 100."
    api["geocoding"].mock(return_value=httpx.Response(400, json={"error": True, "reason": reason}))

    with pytest.raises(WeatherError) as raised:
        await lookup(source, flavour, "London")

    assert not isinstance(raised.value, WeatherUnavailableError)
    assert reason.rstrip(".") in str(raised.value)


async def test_refusal_message_ends_with_a_single_full_stop(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour
) -> None:
    api["forecast"].mock(
        return_value=httpx.Response(400, json=load_fixture("forecast_error_400.json"))
    )

    with pytest.raises(WeatherError) as raised:
        await forecast(source, flavour, LONDON, "metric", 1)

    assert not str(raised.value).endswith("..")


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("[Errno -3] Temporary failure in name resolution"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("The read operation timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("endpoint", ["geocoding", "forecast"])
async def test_network_errors_mean_unavailable_and_are_logged(
    api: respx.MockRouter,
    source: OpenMeteoWeather,
    flavour: Flavour,
    endpoint: str,
    error: httpx.HTTPError,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api[endpoint].mock(side_effect=error)

    with (
        caplog.at_level(logging.WARNING, logger="agent.weather.open_meteo"),
        pytest.raises(WeatherUnavailableError) as raised,
    ):
        await call(source, flavour, endpoint)

    assert str(raised.value) == (
        "I couldn't reach the weather service Open-Meteo, so I can't get real weather right now."
    )
    assert isinstance(raised.value.__cause__, type(error))
    [record] = [r for r in caplog.records if r.name == "agent.weather.open_meteo"]
    assert record.levelno == logging.WARNING
    assert type(error).__name__ in record.getMessage()


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(
                200, text="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}
            ),
            "Open-Meteo sent an unreadable answer.",
        ),
        (
            httpx.Response(200, text='{"latitude":51.5,"current":{"time":"2025-10-1'),
            "Open-Meteo sent an unreadable answer.",
        ),
        (httpx.Response(200, json=[1, 2, 3]), "Open-Meteo sent an unexpected answer."),
    ],
    ids=["html", "truncated-json", "json-list"],
)
@pytest.mark.parametrize("endpoint", ["geocoding", "forecast"])
async def test_unreadable_bodies_mean_unavailable(
    api: respx.MockRouter,
    source: OpenMeteoWeather,
    flavour: Flavour,
    endpoint: str,
    response: httpx.Response,
    message: str,
) -> None:
    api[endpoint].mock(return_value=response)

    with pytest.raises(WeatherUnavailableError) as raised:
        await call(source, flavour, endpoint)

    assert str(raised.value) == message


def _without_current_temperature(payload: dict[str, Any]) -> None:
    del payload["current"]["temperature_2m"]


def _short_daily_column(payload: dict[str, Any]) -> None:
    payload["daily"]["temperature_2m_min"] = payload["daily"]["temperature_2m_min"][:3]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.pop("current"),
        _without_current_temperature,
        lambda p: p["current"].update(temperature_2m=None),
        lambda p: p["current"].update(temperature_2m="warm"),
        lambda p: p["daily"].pop("temperature_2m_max"),
        _short_daily_column,
        lambda p: p["daily"]["time"].__setitem__(0, "2025-14-10"),
    ],
    ids=[
        "no-current",
        "no-current-temperature",
        "null-temperature",
        "text-temperature",
        "no-daily-max",
        "short-daily-column",
        "bad-date",
    ],
)
async def test_forecast_with_missing_or_bad_fields_means_unavailable(
    api: respx.MockRouter,
    source: OpenMeteoWeather,
    flavour: Flavour,
    damage: Callable[[dict[str, Any]], object],
) -> None:
    payload = load_fixture("forecast_london_metric.json")
    damage(payload)
    api["forecast"].mock(return_value=httpx.Response(200, json=payload))

    with pytest.raises(WeatherUnavailableError) as raised:
        await forecast(source, flavour, LONDON, "metric", 7)

    assert str(raised.value) == (
        "Open-Meteo sent a forecast I could not read, so I can't report the weather right now."
    )


@pytest.mark.parametrize("missing", ["latitude", "name"])
async def test_geocoding_result_with_missing_fields_means_unavailable(
    api: respx.MockRouter, source: OpenMeteoWeather, flavour: Flavour, missing: str
) -> None:
    payload = load_fixture("geocoding_london.json")
    del payload["results"][0][missing]
    api["geocoding"].mock(return_value=httpx.Response(200, json=payload))

    with pytest.raises(WeatherUnavailableError):
        await lookup(source, flavour, "London")
