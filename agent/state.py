"""The graph's state: the conversation's messages, plus the session record and user facts."""

from __future__ import annotations

from typing import NotRequired

from langgraph.graph import MessagesState

from session_policy.policy import SessionState, UserFacts


class AgentState(MessagesState):
    """One thread: its messages (LangGraph's `add_messages` reducer appends to them)."""

    session: NotRequired[SessionState]
    """Written by the session policy nodes; absent when the graph runs without a policy."""
    user_facts: NotRequired[UserFacts]
    """What the user told about themselves that outlives the session (name, units)."""
