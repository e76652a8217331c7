"""A fake Open-Meteo for respx: answers like the real API from recorded responses.

Geocoding filters the recorded London results by `name`, `countryCode` and `count` (and
leaves `results` out when nothing matches, as the API does); the forecast endpoint picks
the recording for the requested units and keeps only `forecast_days` days.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "open_meteo"


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def geocoding_server(request: httpx.Request) -> httpx.Response:
    """Answers /v1/search like Open-Meteo, from the recorded London results."""
    params = request.url.params
    results = [
        r
        for r in load_fixture("geocoding_london.json")["results"]
        if r["name"].casefold() == params["name"].casefold()
        and ("countryCode" not in params or r["country_code"] == params["countryCode"])
    ][: int(params.get("count", 10))]
    if not results:  # the real API leaves "results" out when nothing matches
        return httpx.Response(200, json=load_fixture("geocoding_empty.json"))
    return httpx.Response(200, json={"results": results, "generationtime_ms": 0.8420944})


def forecast_server(request: httpx.Request) -> httpx.Response:
    """Answers /v1/forecast like Open-Meteo: recorded London data, `forecast_days` days."""
    params = request.url.params
    imperial = params.get("temperature_unit") == "fahrenheit"
    payload = load_fixture(f"forecast_london_{'imperial' if imperial else 'metric'}.json")
    days = int(params.get("forecast_days", 7))
    payload["daily"] = {key: values[:days] for key, values in payload["daily"].items()}
    return httpx.Response(200, json=payload)
