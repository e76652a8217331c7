"""The graph's state: the conversation's messages (LangGraph's `add_messages` reducer)."""

from __future__ import annotations

from langgraph.graph import MessagesState


class AgentState(MessagesState):
    """Messages of one conversation thread; later turns append to it."""
