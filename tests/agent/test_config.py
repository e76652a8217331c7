"""Agent settings: defaults, the empty-MODEL rule, validation messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent import AgentSettings
from agent.models import OfflineChatModel, load_chat_model
from agent.weather import AutoWeather, OpenMeteoWeather, SimulatedWeather, make_weather_source


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "WEATHER_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")  # no stray .env


def test_offline_by_default() -> None:
    settings = AgentSettings()
    assert settings.resolved_model == "offline"
    assert isinstance(load_chat_model(settings), OfflineChatModel)
    assert settings.weather_provider == "auto"


def test_key_selects_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert AgentSettings().resolved_model == "openai:gpt-4o-mini"
    monkeypatch.setenv("MODEL", "offline")
    assert AgentSettings().resolved_model == "offline"


def test_bad_model_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL", "claude")
    with pytest.raises(ValidationError, match="MODEL must be 'offline' or 'openai:<model name>'"):
        AgentSettings()


def test_bad_weather_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEATHER_PROVIDER", "accuweather")
    with pytest.raises(ValidationError, match="weather_provider"):
        AgentSettings()


@pytest.mark.parametrize(
    ("provider", "kind"),
    [("simulated", SimulatedWeather), ("open-meteo", OpenMeteoWeather), ("auto", AutoWeather)],
)
def test_weather_source_by_provider(provider: str, kind: type) -> None:
    settings = AgentSettings(weather_provider=provider)
    assert isinstance(make_weather_source(settings), kind)
