"""The service's settings: CORS_ORIGINS and its rule for AUTH_MODE=token."""

from __future__ import annotations

import pytest

from server.config import ConfigError, load_settings

SECRET = "s" * 32


def test_cors_default_is_any_origin_without_auth_and_none_with_tokens() -> None:
    assert load_settings(auth_mode="none").allowed_origins == ["*"]
    assert load_settings(auth_mode="token", auth_secret=SECRET).allowed_origins == []


def test_cors_origins_are_a_comma_separated_list() -> None:
    settings = load_settings(
        auth_mode="token",
        auth_secret=SECRET,
        cors_origins=" https://chat.example.com/ , http://127.0.0.1:3000,",
    )
    assert settings.allowed_origins == ["https://chat.example.com", "http://127.0.0.1:3000"]
    assert load_settings(cors_origins="").allowed_origins == []  # explicitly none


def test_token_mode_refuses_any_origin() -> None:
    with pytest.raises(ConfigError, match="AUTH_MODE=token needs CORS_ORIGINS to name"):
        load_settings(auth_mode="token", auth_secret=SECRET, cors_origins="*")


@pytest.mark.parametrize("origin", ["chat.example.com", "https://a.example/path", "ftp://x"])
def test_a_malformed_origin_is_refused_by_name(origin: str) -> None:
    with pytest.raises(ConfigError, match=r"CORS_ORIGINS: .* is not an origin"):
        load_settings(cors_origins=f"https://ok.example,{origin}")


def test_double_texting_queues_by_default_and_reject_waits_for_nothing() -> None:
    assert load_settings().turn_queue_seconds == 30
    assert load_settings(double_texting_timeout=5).turn_queue_seconds == 5
    assert load_settings(double_texting="reject").turn_queue_seconds == 0


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("double_texting", "queue", "DOUBLE_TEXTING='queue'"),
        ("double_texting_timeout", 0, "DOUBLE_TEXTING_TIMEOUT=0"),
    ],
)
def test_a_wrong_double_texting_setting_is_refused_by_name(
    setting: str, value: object, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(**{setting: value})
