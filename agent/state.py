"""The graph's state: the conversation's messages, the user's facts and the policy's channels."""

from __future__ import annotations

from session_policy.policy import SessionThreadState


class AgentState(SessionThreadState):
    """One thread: its messages and the user's facts, plus the policy's verdict on the run
    and, when the graph runs on its own, its session record (see `SessionThreadState`)."""
