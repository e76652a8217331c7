"""Fixtures for the agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx

from agent.weather.open_meteo import FORECAST_URL, GEOCODING_URL
from tests.agent.fake_open_meteo import forecast_server, geocoding_server
from tests.agent.openai_stub import OpenAIStub


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A local OpenAI-compatible server on 127.0.0.1 (free port), stopped after the test."""
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """Open-Meteo played by respx from recorded answers (see fake_open_meteo.py)."""
    with respx.mock(assert_all_called=False) as router:
        router.get(GEOCODING_URL, name="geocoding").mock(side_effect=geocoding_server)
        router.get(FORECAST_URL, name="forecast").mock(side_effect=forecast_server)
        yield router
