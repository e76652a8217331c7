"""Chat models: the offline rule-based model, or OpenAI / any OpenAI-compatible server."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from agent.config import AgentSettings
from agent.models.offline import OfflineChatModel


def load_chat_model(settings: AgentSettings) -> BaseChatModel:
    """The model named by `MODEL` (see `AgentSettings`). Opens no connection."""
    name = settings.resolved_model
    if name == "offline":
        return OfflineChatModel()
    from langchain_openai import ChatOpenAI  # only needed for real models

    api_key = settings.openai_api_key
    if api_key is None and settings.openai_base_url is None:
        raise ValueError(
            f"MODEL={name} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
            "OpenAI-compatible server such as Ollama or vLLM)."
        )
    return ChatOpenAI(
        model=name.removeprefix("openai:"),
        # Local OpenAI-compatible servers usually ignore the key, but the client needs one.
        api_key=api_key or SecretStr("not-needed"),
        base_url=settings.openai_base_url,
        temperature=0,
    )


__all__ = ["OfflineChatModel", "load_chat_model"]
