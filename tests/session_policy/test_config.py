"""Session settings: defaults, profiles, overrides and readable validation errors."""

from __future__ import annotations

import pytest

from server.config import ConfigError, load_settings
from session_policy.config import SessionSettings

VARIABLES = [
    "SESSION_PROFILE", "SESSION_DURATION", "MAX_CONVERSATIONS_PER_SESSION",
    "INACTIVITY_TIMEOUT", "CLEANUP_INTERVAL", "SESSION_HISTORY_RETENTION", "REDIS_URL",
    "USER_MEMORY_TTL", "END_SESSIONS_ON_SHUTDOWN", "MODEL", "OPENAI_API_KEY",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")


def test_defaults_are_the_originals() -> None:
    settings = SessionSettings()
    assert (
        settings.session_duration,
        settings.max_conversations_per_session,
        settings.inactivity_timeout,
        settings.cleanup_interval,
        settings.session_history_retention,
        settings.user_memory_ttl,
    ) == (1800, 20, 900, 300_000, 86_400, 3600)
    assert settings.cleanup_interval_seconds == 300.0
    assert settings.end_sessions_on_shutdown is False


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("development", (900, 10, 300, 60_000)),
        ("production", (3600, 50, 1800, 300_000)),
        ("memory-constrained", (600, 5, 180, 30_000)),
    ],
)
def test_profiles(monkeypatch: pytest.MonkeyPatch, profile: str, expected: tuple[int, ...]) -> None:
    monkeypatch.setenv("SESSION_PROFILE", profile)
    settings = SessionSettings()
    assert (
        settings.session_duration,
        settings.max_conversations_per_session,
        settings.inactivity_timeout,
        settings.cleanup_interval,
    ) == expected


def test_explicit_variables_override_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_PROFILE", "memory-constrained")
    monkeypatch.setenv("MAX_CONVERSATIONS_PER_SESSION", "7")
    settings = SessionSettings()
    assert settings.max_conversations_per_session == 7
    assert settings.session_duration == 600


def test_errors_name_the_variable_and_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_DURATION", "0")
    monkeypatch.setenv("CLEANUP_INTERVAL", "ten")
    monkeypatch.setenv("SESSION_PROFILE", "huge")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "SESSION_DURATION='0'" in message
    assert "allowed: 1 to 604800" in message
    assert "CLEANUP_INTERVAL='ten'" in message
    assert "SESSION_PROFILE='huge'" in message
