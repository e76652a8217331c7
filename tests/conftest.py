"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather

# A fixed moment (a Wednesday, noon UTC) so dates and simulated numbers never drift.
FIXED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture
def offline_model() -> OfflineChatModel:
    return OfflineChatModel(clock=fixed_clock)


@pytest.fixture
def simulated_weather() -> SimulatedWeather:
    return SimulatedWeather(clock=fixed_clock)
