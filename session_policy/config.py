"""Session limits and storage settings, from environment variables (and `.env`).

`SESSION_PROFILE` picks one of the three preset configurations of the original design;
any variable set explicitly overrides the preset's value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from session_policy.redis_client import is_cluster_url, parse_cluster_url

Profile = Literal["development", "production", "memory-constrained"]

PROFILES: dict[str, dict[str, int]] = {
    "development": {
        "session_duration": 900,
        "max_conversations_per_session": 10,
        "inactivity_timeout": 300,
        "cleanup_interval": 60_000,
    },
    "production": {
        "session_duration": 3600,
        "max_conversations_per_session": 50,
        "inactivity_timeout": 1800,
        "cleanup_interval": 300_000,
    },
    "memory-constrained": {
        "session_duration": 600,
        "max_conversations_per_session": 5,
        "inactivity_timeout": 180,
        "cleanup_interval": 30_000,
    },
}

DAY = 86_400
WEEK = 7 * DAY


class SessionSettings(BaseSettings):
    """How long sessions live, how big they get, and where they are stored."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    session_profile: Profile | None = None
    session_duration: int = Field(
        default=1800, ge=1, le=WEEK, description="Seconds a session may last from its start."
    )
    max_conversations_per_session: int = Field(
        default=20, ge=1, le=10_000, description="Conversations (message + reply) per session."
    )
    inactivity_timeout: int = Field(
        default=900, ge=1, le=WEEK, description="Seconds without a message that end a session."
    )
    cleanup_interval: int = Field(
        default=300_000,
        ge=100,
        le=DAY * 1000,
        description="Milliseconds between cleanup runs (milliseconds, as in the original).",
    )
    session_history_retention: int = Field(
        default=DAY, ge=1, le=30 * DAY, description="Seconds an ended session's record is kept."
    )
    user_memory_ttl: int = Field(
        default=3600, ge=1, le=30 * DAY, description="Seconds the user's name and units are kept."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis 7.4+ URL (redis://, rediss://), or a Redis Cluster by its nodes "
        "(redis+cluster://host:port,host:port; rediss+cluster:// for TLS); unset: embedded "
        "Redis (serve).",
    )
    redis_timeout: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds a Redis command may take before Redis counts as down (memory).",
    )
    end_sessions_on_shutdown: bool = False
    double_texting: Literal["reject", "enqueue"] = Field(
        default="enqueue",
        description="A user's message while their previous one is being answered: `enqueue` "
        "waits for it (in arrival order, up to DOUBLE_TEXTING_TIMEOUT), `reject` is a 409.",
    )
    double_texting_timeout: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Seconds a queued message waits for the user's turn before its 409.",
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: str | None) -> str | None:
        if url and is_cluster_url(url):
            parse_cluster_url(url)  # a RedisUrlError (a ValueError) says what is wrong
        return url or None

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        profile = data.get("session_profile")
        preset = PROFILES.get(str(profile)) if profile else None
        if preset is None:
            return data
        # Explicit variables win over the preset: only fill in what was not given.
        return {**preset, **{k: v for k, v in data.items() if v is not None}}

    @property
    def cleanup_interval_seconds(self) -> float:
        return self.cleanup_interval / 1000

    @property
    def turn_queue_seconds(self) -> float:
        """How long a message waits for its user's running turn; 0: refused at once."""
        return self.double_texting_timeout if self.double_texting == "enqueue" else 0.0
