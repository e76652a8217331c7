"""The LangGraph weather agent: graph factory, tools, weather sources and chat models."""

from agent.config import AgentSettings
from agent.graph import build_graph

__all__ = ["AgentSettings", "build_graph"]
