"""Offline geocoding from GeoNames data."""

from __future__ import annotations

import pytest

from agent.weather.gazetteer import gazetteer, normalize


@pytest.mark.parametrize(
    ("query", "name", "country", "region"),
    [
        ("London", "London", "United Kingdom", ""),  # the biggest London wins
        ("london", "London", "United Kingdom", ""),
        ("London, CA", "London", "Canada", ""),
        ("Paris, France", "Paris", "France", ""),
        ("Paris, Texas", "Paris", "United States", "Texas"),
        ("New York", "New York City", "United States", "New York"),
        ("NYC", "New York City", "United States", "New York"),
        ("Sao Paulo", "São Paulo", "Brazil", ""),
        ("München", "Munich", "Germany", ""),
        ("Springfield, IL", "Springfield", "United States", "Illinois"),
    ],
)
def test_lookup(query: str, name: str, country: str, region: str) -> None:
    place = gazetteer().lookup(query)
    assert place is not None
    assert (place.name, place.country, place.region) == (name, country, region)
    assert place.timezone


@pytest.mark.parametrize("query", ["Xyzzyville", "", "   ", "London, Atlantis"])
def test_unknown(query: str) -> None:
    assert gazetteer().lookup(query) is None


def test_normalize() -> None:
    assert normalize("  São-Paulo! ") == "sao paulo"
