"""Agent configuration, read from environment variables (and `.env`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


class AgentSettings(BaseSettings):
    """Which chat model and weather source the agent uses.

    `MODEL` left empty means: `openai:gpt-4o-mini` when `OPENAI_API_KEY` is set,
    otherwise the offline model, so a fresh checkout works with no keys at all.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    model: str = Field(default="", description="`offline` or `openai:<model name>`.")
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = Field(
        default=None, description="Any OpenAI-compatible server, e.g. Ollama or vLLM."
    )
    weather_provider: Literal["auto", "open-meteo", "simulated"] = "auto"
    open_meteo_timeout: float = Field(default=5.0, gt=0, le=60)
    open_meteo_retry_after: float = Field(
        default=60.0, ge=0, description="Seconds `auto` stays on simulated weather after a failure."
    )
    open_meteo_geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search"
    open_meteo_forecast_url: str = "https://api.open-meteo.com/v1/forecast"

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        value = value.strip()
        if value and value != "offline" and not (value.startswith("openai:") and value[7:]):
            raise ValueError("MODEL must be 'offline' or 'openai:<model name>', e.g. openai:gpt-4o")
        return value

    @property
    def resolved_model(self) -> str:
        """The model actually used, after applying the empty-MODEL default."""
        if self.model:
            return self.model
        if self.openai_api_key is not None:
            return f"openai:{DEFAULT_OPENAI_MODEL}"
        return "offline"
