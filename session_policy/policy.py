"""The session policy as two graph nodes around the agent: `session_gate` and `session_close`.

`session_gate` (before the model) starts the session record on a thread's first turn and
ends the session when its age passed SESSION_DURATION (counted from its start: activity
never extends it) or its last activity is older than INACTIVITY_TIMEOUT. `session_close`
(after the reply) counts the conversation and ends the session when it reaches
MAX_CONVERSATIONS_PER_SESSION, after the reply that reached it was delivered.

What "ends" means depends on who runs the graph:
- `handoff` (the server): the gate stops the run unanswered and marks the session ended;
  the session manager deletes the thread and answers the message in a new session.
- `rollover` (standalone, e.g. `langgraph dev`): the thread starts a new session in place,
  dropping the old conversation, and answers the message.

Both nodes also keep the user's cross-session facts (name, preferred units) in the
LangGraph store, when the graph has one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal, NotRequired, cast

from langchain_core.messages import AnyMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.config import get_store
from langgraph.graph import MessagesState
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict

from session_policy.models import EndReason, SessionLimits, expired_reason, now_ms

log = logging.getLogger(__name__)

GATE_NODE = "session_gate"
CLOSE_NODE = "session_close"
FACTS_NAMESPACE = "users"
FACTS_KEY = "facts"


class SessionState(TypedDict, total=False):
    """The session as the thread itself records it."""

    session_id: str
    user_id: str
    started_at: int  # epoch ms
    last_activity: int  # epoch ms
    conversation_count: int
    status: Literal["active", "ended"]
    end_reason: EndReason | None
    answered: bool  # False while a turn runs, and when the gate ended the session


class UserFacts(TypedDict, total=False):
    """What is kept about a user across sessions."""

    name: str
    units: str


FactsExtractor = Callable[[str], UserFacts]


class SessionThreadState(MessagesState):
    """A session's thread: its messages (LangGraph's `add_messages` reducer appends to
    them), plus what the policy nodes keep there."""

    session: NotRequired[SessionState]
    """Written by the session policy nodes; absent when the graph runs without a policy."""
    user_facts: NotRequired[UserFacts]
    """What the user told about themselves that outlives the session (name, units)."""


def facts_location(user_id: str) -> tuple[tuple[str, ...], str]:
    """Where a user's facts live in the LangGraph store: (namespace, key)."""
    # LangGraph stores refuse a namespace label with a period, which user ids may hold
    # ("john.doe"); `%` is never in a user id, so the label stays unique to the user.
    return (FACTS_NAMESPACE, user_id.replace(".", "%2E")), FACTS_KEY


def _configurable(config: RunnableConfig) -> dict[str, Any]:
    return config.get("configurable") or {}


def _store() -> BaseStore | None:
    try:
        return get_store()
    except RuntimeError:  # not inside a run, or compiled without a store
        return None


class SessionPolicy:
    """Enforces the session limits inside the graph. See the module docstring."""

    def __init__(
        self,
        limits: SessionLimits,
        *,
        on_expiry: Literal["handoff", "rollover"] = "handoff",
        clock_ms: Callable[[], int] = now_ms,
        extract_facts: FactsExtractor | None = None,
        facts_ttl_s: int = 3600,
    ) -> None:
        self.limits = limits
        self.on_expiry = on_expiry
        self.clock_ms = clock_ms
        self.extract_facts = extract_facts
        self.facts_ttl_s = facts_ttl_s

    # --- the rules -------------------------------------------------------------------

    def expired_reason(self, session: SessionState, now_ms: int) -> EndReason | None:
        expires = self.limits.expires_at(session["started_at"])
        inactive = self.limits.inactive_at(session["last_activity"], expires)
        reason = expired_reason(expires, inactive, now_ms)
        if reason is None and self.limits.is_full(session["conversation_count"]):
            return "conversation_limit"
        return reason

    def _new_session(self, config: RunnableConfig, now_ms: int, *, rollover: bool) -> SessionState:
        conf = _configurable(config)
        thread_id = str(conf.get("thread_id", "local"))
        start = now_ms if rollover else int(conf.get("session_started_at") or now_ms)
        return SessionState(
            # A rolled-over thread holds several sessions in turn: tell them apart.
            session_id=f"{thread_id}/{start}" if rollover else thread_id,
            user_id=str(conf.get("user_id") or "anonymous"),
            started_at=start,
            last_activity=start,
            conversation_count=0,
            status="active",
            end_reason=None,
            answered=False,
        )

    # --- the nodes ----------------------------------------------------------------------

    def gate_update(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        """The state update of `session_gate` (without the user-facts lookup)."""
        now = self.clock_ms()
        session: SessionState | None = state.get("session")
        if session is None:
            return {"session": self._new_session(config, now, rollover=False)}
        if session.get("status") == "ended":
            reason: EndReason | None = session.get("end_reason") or "conversation_limit"
        else:
            # Judged at the message's arrival when the session manager tells it (time the
            # server took to get to the turn is not the user's inactivity), else now.
            received = _configurable(config).get("message_received_at")
            reason = self.expired_reason(session, now if received is None else int(received))
        if reason is None:
            return {"session": {**session, "answered": False}}
        if self.on_expiry == "handoff":
            log.info("session %s ended before the turn: %s", session["session_id"], reason)
            ended = {**session, "status": "ended", "end_reason": reason, "answered": False}
            return {"session": ended}
        log.info("session %s ended (%s): new session in the thread", session["session_id"], reason)
        messages: Sequence[AnyMessage] = state.get("messages", [])
        latest = [m for m in messages[-1:] if isinstance(m, HumanMessage)]
        return {
            "session": self._new_session(config, now, rollover=True),
            "messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *latest],
            "user_facts": {},
        }

    def close_update(self, state: dict[str, Any]) -> dict[str, Any]:
        """The state update of `session_close` (without saving user facts)."""
        now = self.clock_ms()
        session = cast(SessionState, dict(state["session"]))
        session["conversation_count"] = session.get("conversation_count", 0) + 1
        session["last_activity"] = now
        session["answered"] = True
        if self.limits.is_full(session["conversation_count"]):
            session["status"] = "ended"
            session["end_reason"] = "conversation_limit"
        update: dict[str, Any] = {"session": session}
        facts = self._new_facts(state)
        if facts is not None:
            update["user_facts"] = facts
        return update

    def _new_facts(self, state: dict[str, Any]) -> UserFacts | None:
        if self.extract_facts is None:
            return None
        human = next(
            (m for m in reversed(state.get("messages", [])) if isinstance(m, HumanMessage)), None
        )
        said = self.extract_facts(human.text) if human else UserFacts()
        known: UserFacts = state.get("user_facts") or UserFacts()
        merged: UserFacts = {**known, **said}
        return merged if merged != known else None

    @staticmethod
    def routes_after_gate(state: dict[str, Any]) -> Literal["continue", "__end__"]:
        session = state.get("session") or {}
        return "__end__" if session.get("status") == "ended" else "continue"

    def gate_node(self) -> RunnableLambda[Any, Any]:
        def gate(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            update = self.gate_update(state, config)
            store = _store()
            if store is not None and self._starts_session(state, update):
                update["user_facts"] = self.read_facts(store.get(*self._facts_key(update)))
            return update

        async def agate(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            update = self.gate_update(state, config)
            store = _store()
            if store is not None and self._starts_session(state, update):
                item = await store.aget(*self._facts_key(update))
                update["user_facts"] = self.read_facts(item)
            return update

        return RunnableLambda(gate, afunc=agate, name=GATE_NODE)

    def close_node(self) -> RunnableLambda[Any, Any]:
        def close(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            update = self.close_update(state)
            store = _store()
            if store is not None and "user_facts" in update:
                store.put(*self._facts_key(update, state), self._facts_value(update))
            return update

        async def aclose(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            update = self.close_update(state)
            store = _store()
            if store is not None and "user_facts" in update:
                await store.aput(*self._facts_key(update, state), self._facts_value(update))
            return update

        return RunnableLambda(close, afunc=aclose, name=CLOSE_NODE)

    # --- user facts in the store -------------------------------------------------------

    @staticmethod
    def _starts_session(state: dict[str, Any], update: dict[str, Any]) -> bool:
        before = (state.get("session") or {}).get("session_id")
        return bool(
            update["session"].get("status") == "active"
            and before != update["session"].get("session_id")
        )

    @staticmethod
    def _facts_key(
        update: dict[str, Any], state: dict[str, Any] | None = None
    ) -> tuple[tuple[str, ...], str]:
        session = update.get("session") or (state or {}).get("session") or {}
        return facts_location(str(session.get("user_id", "anonymous")))

    def _facts_value(self, update: dict[str, Any]) -> dict[str, Any]:
        return self.facts_value(update["user_facts"], self.facts_ttl_s)

    def facts_value(self, facts: UserFacts, ttl_s: float) -> dict[str, Any]:
        """The stored form of `facts`, kept for `ttl_s` seconds."""
        # The expiry travels with the value, so stores without TTL support honour it too;
        # Redis keys also get a TTL through the store's own TTL config.
        return {**facts, "expiresAt": self.clock_ms() + int(ttl_s * 1000)}

    def read_facts(self, item: Any) -> UserFacts:
        """The facts of a stored item (`store.aget(*facts_location(user))`), if not expired."""
        if item is None or item.value.get("expiresAt", 0) <= self.clock_ms():
            return UserFacts()
        value: dict[str, Any] = item.value
        facts = UserFacts()
        if isinstance(value.get("name"), str):
            facts["name"] = value["name"]
        if isinstance(value.get("units"), str):
            facts["units"] = value["units"]
        return facts
