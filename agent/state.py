"""The graph's state: the conversation's messages, plus the session record and user facts."""

from __future__ import annotations

from session_policy.policy import SessionThreadState


class AgentState(SessionThreadState):
    """One thread: its messages, the session record and the user's facts (see
    `SessionThreadState`; the session policy owns the last two)."""
