"""The service's one settings object, and start-up validation with readable errors."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.config import AgentSettings
from session_policy.config import SessionSettings


class Settings(AgentSettings, SessionSettings):
    """Everything the service reads from the environment (see the README's table)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    auth_mode: Literal["none", "token"] = "none"
    auth_secret: SecretStr | None = Field(
        default=None, description="HMAC key for tokens (AUTH_MODE=token); 32+ characters."
    )
    max_message_chars: int = Field(default=4000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=65_536, ge=1024, le=100_000_000)
    rate_limit_per_minute: int = Field(
        default=60, ge=0, le=100_000, description="Messages per user per minute; 0: no limit."
    )
    cors_origins: str | None = Field(
        default=None,
        description="Origins whose web pages may call the API: comma-separated, or `*`. "
        "Unset: `*` with AUTH_MODE=none, none with AUTH_MODE=token.",
    )
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _secret_for_tokens(self) -> Settings:
        secret = self.auth_secret.get_secret_value() if self.auth_secret else ""
        if self.auth_mode == "token" and len(secret) < 32:
            raise ValueError("AUTH_MODE=token needs AUTH_SECRET of at least 32 characters")
        return self

    @model_validator(mode="after")
    def _origins_named_for_tokens(self) -> Settings:
        origins = self.allowed_origins  # also checks each origin's form
        if self.auth_mode == "token" and "*" in origins:
            raise ValueError(
                "AUTH_MODE=token needs CORS_ORIGINS to name its origins (e.g. "
                "CORS_ORIGINS=https://chat.example.com,https://app.example.com), not '*': "
                "any web page could then use a token it got hold of"
            )
        return self

    @property
    def allowed_origins(self) -> list[str]:
        """The origins CORS lets in (`["*"]`: any); `[]`: no cross-origin calls."""
        if self.cors_origins is None:
            return ["*"] if self.auth_mode == "none" else []
        origins = [part.strip().rstrip("/") for part in self.cors_origins.split(",")]
        origins = [origin for origin in origins if origin]
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CORS_ORIGINS: {origin!r} is not an origin: give scheme://host[:port] "
                    "(no path), comma-separated, or '*'"
                )
        return origins


# scheme://host[:port], as a browser sends it in `Origin`.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


class ConfigError(ValueError):
    """Invalid configuration; the message names each variable and what it accepts."""


def _allowed(settings_class: type[BaseSettings], field: str) -> str:
    info = settings_class.model_fields.get(field)
    if info is None:
        return ""
    bounds: dict[str, Any] = {}
    for constraint in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(constraint, name, None) is not None:
                bounds[name] = getattr(constraint, name)
    if "ge" in bounds and "le" in bounds:
        return f"allowed: {bounds['ge']} to {bounds['le']}"
    parts = [
        f"{'>=' if n == 'ge' else '>' if n == 'gt' else '<=' if n == 'le' else '<'} {v}"
        for n, v in bounds.items()
    ]
    return f"allowed: {', '.join(parts)}" if parts else ""


def describe(error: ValidationError, settings_class: type[BaseSettings]) -> str:
    lines = []
    for problem in error.errors():
        if not problem["loc"]:  # a rule across variables: its message names them
            lines.append(problem["msg"].removeprefix("Value error, "))
            continue
        field = str(problem["loc"][0])
        variable = field.upper()
        shown = problem.get("input")
        allowed = _allowed(settings_class, field)
        detail = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{variable}={shown!r}: {detail}" + (f" ({allowed})" if allowed else ""))
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, `.env` and `overrides`; `ConfigError` if invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe(error, Settings)) from None
