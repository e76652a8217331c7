"""The session policy as two graph nodes around the agent: `session_gate` and `session_close`.

`session_gate` (before the model) starts the session record on a thread's first turn and
ends the session when its age passed SESSION_DURATION (counted from its start: activity
never extends it) or its last activity is older than INACTIVITY_TIMEOUT. `session_close`
(after the reply) counts the conversation and ends the session when it reaches
MAX_CONVERSATIONS_PER_SESSION, after the reply that reached it was delivered.

Where the session record lives depends on who runs the graph, and there is one record:
- The session manager (the server) keeps it in its index (Redis meta hash, or memory) and
  passes it in each run's runtime context (`SessionContext`); the thread keeps no copy.
  An expired session ends as a `handoff`: the gate stops the run unanswered, the manager
  ends the session (its thread goes with it) and answers the message in a new session.
- Run on its own (e.g. `langgraph dev`), the graph has no index: the thread's `session`
  channel is the record. With `rollover` an expired session is replaced in place, dropping
  the old conversation, and the message is answered; with `handoff` the run stops unanswered.

Either way each run reports its verdict in the `turn` channel, which is never checkpointed.

Both nodes also keep the user's cross-session facts (name, preferred units) in the
LangGraph store, when the graph has one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, cast

from langchain_core.messages import AnyMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.config import get_store
from langgraph.graph import MessagesState
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import get_runtime
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict

from session_policy.models import EndReason, Session, SessionLimits, expired_reason, now_ms

log = logging.getLogger(__name__)

GATE_NODE = "session_gate"
CLOSE_NODE = "session_close"
FACTS_NAMESPACE = "users"
FACTS_KEY = "facts"


@dataclass(frozen=True)
class SessionContext:
    """Per-run data of the session policy: the graph's LangGraph runtime context
    (`context_schema`), given as `graph.ainvoke(..., context=SessionContext(...))`."""

    user_id: str = "anonymous"
    session: Session | None = None
    """The session's record, when a session manager runs the turn: then it is the one
    record, and the thread keeps none."""
    received_at_ms: int | None = None
    """When the message arrived: the limits are judged then (time the server took to get
    to the turn is not the user's inactivity); without it, when the gate runs."""


class TurnVerdict(TypedDict):
    """What the policy decided about one run, for whoever runs the graph."""

    answered: bool  # False when the gate ended the session before the model ran
    conversation_count: int  # the session's conversations after this run
    end_reason: EndReason | None  # set when the session ended (before or after the reply)


class SessionState(TypedDict, total=False):
    """The session as the thread itself records it, when no session manager does."""

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
    """The session record of a graph run on its own (see the module docstring); absent
    when a session manager keeps the record, or the graph runs without a policy."""
    turn: NotRequired[Annotated[TurnVerdict, UntrackedValue(dict)]]
    """The policy's verdict on this run; never checkpointed."""
    user_facts: NotRequired[UserFacts]
    """What the user told about themselves that outlives the session (name, units)."""


def facts_location(user_id: str) -> tuple[tuple[str, ...], str]:
    """Where a user's facts live in the LangGraph store: (namespace, key)."""
    # LangGraph stores refuse a namespace label with a period, which user ids may hold
    # ("john.doe"); `%` is never in a user id, so the label stays unique to the user.
    return (FACTS_NAMESPACE, user_id.replace(".", "%2E")), FACTS_KEY


def _context() -> SessionContext:
    context = get_runtime().context
    return context if isinstance(context, SessionContext) else SessionContext()


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
        """Why a thread-kept session has ended by `now_ms`, if it has."""
        expires = self.limits.expires_at(session["started_at"])
        inactive = self.limits.inactive_at(session["last_activity"], expires)
        return expired_reason(expires, inactive, now_ms) or self._full(
            session["conversation_count"]
        )

    def _full(self, conversation_count: int) -> EndReason | None:
        return "conversation_limit" if self.limits.is_full(conversation_count) else None

    def _new_session(
        self, config: RunnableConfig, context: SessionContext, now_ms: int, *, rollover: bool
    ) -> SessionState:
        thread_id = str((config.get("configurable") or {}).get("thread_id", "local"))
        return SessionState(
            # A rolled-over thread holds several sessions in turn: tell them apart.
            session_id=f"{thread_id}/{now_ms}" if rollover else thread_id,
            user_id=context.user_id,
            started_at=now_ms,
            last_activity=now_ms,
            conversation_count=0,
            status="active",
            end_reason=None,
            answered=False,
        )

    # --- the nodes ----------------------------------------------------------------------

    def gate_update(
        self, state: dict[str, Any], config: RunnableConfig, context: SessionContext
    ) -> dict[str, Any]:
        """The state update of `session_gate` (without the user-facts lookup)."""
        now = self.clock_ms()
        judged_at = now if context.received_at_ms is None else context.received_at_ms
        record = context.session
        if record is not None:  # the manager's record
            reason = record.expired_reason(judged_at) or self._full(record.conversation_count)
            if reason is None:
                return {}
            log.info("session %s ended before the turn: %s", record.session_id, reason)
            return {"turn": self._unanswered(record.conversation_count, reason)}
        session: SessionState | None = state.get("session")
        if session is None:
            return {"session": self._new_session(config, context, now, rollover=False)}
        if session.get("status") == "ended":
            reason = session.get("end_reason") or "conversation_limit"
        else:
            reason = self.expired_reason(session, judged_at)
        if reason is None:
            return {"session": {**session, "answered": False}}
        if self.on_expiry == "handoff":
            log.info("session %s ended before the turn: %s", session["session_id"], reason)
            ended = {**session, "status": "ended", "end_reason": reason, "answered": False}
            return {
                "session": ended,
                "turn": self._unanswered(session["conversation_count"], reason),
            }
        log.info("session %s ended (%s): new session in the thread", session["session_id"], reason)
        messages: Sequence[AnyMessage] = state.get("messages", [])
        latest = [m for m in messages[-1:] if isinstance(m, HumanMessage)]
        return {
            "session": self._new_session(config, context, now, rollover=True),
            "messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *latest],
            "user_facts": {},
        }

    @staticmethod
    def _unanswered(conversation_count: int, reason: EndReason) -> TurnVerdict:
        return TurnVerdict(answered=False, conversation_count=conversation_count, end_reason=reason)

    def close_update(self, state: dict[str, Any], context: SessionContext) -> dict[str, Any]:
        """The state update of `session_close` (without saving user facts)."""
        record = context.session
        kept: SessionState | None = state.get("session") if record is None else None
        before = record.conversation_count if record else (kept or {}).get("conversation_count", 0)
        count = before + 1  # a conversation: a message and the reply to it
        ended = self._full(count)
        update: dict[str, Any] = {
            "turn": TurnVerdict(answered=True, conversation_count=count, end_reason=ended)
        }
        if kept is not None:  # the thread is the record
            session = cast(SessionState, dict(kept))
            session["conversation_count"] = count
            session["last_activity"] = self.clock_ms()
            session["answered"] = True
            if ended:
                session["status"] = "ended"
                session["end_reason"] = ended
            update["session"] = session
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
        verdict = state.get("turn")
        return "__end__" if verdict is not None and not verdict["answered"] else "continue"

    def gate_node(self) -> RunnableLambda[Any, Any]:
        def gate(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            context = _context()
            update = self.gate_update(state, config, context)
            store = _store()
            if store is not None and self._starts_session(state, update, context):
                key = facts_location(self._user_of(state, update, context))
                update["user_facts"] = self.read_facts(store.get(*key))
            return update

        async def agate(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            context = _context()
            update = self.gate_update(state, config, context)
            store = _store()
            if store is not None and self._starts_session(state, update, context):
                key = facts_location(self._user_of(state, update, context))
                update["user_facts"] = self.read_facts(await store.aget(*key))
            return update

        return RunnableLambda(gate, afunc=agate, name=GATE_NODE)

    def close_node(self) -> RunnableLambda[Any, Any]:
        def close(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            context = _context()
            update = self.close_update(state, context)
            store = _store()
            if store is not None and "user_facts" in update:
                key = facts_location(self._user_of(state, update, context))
                store.put(*key, self._facts_value(update))
            return update

        async def aclose(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            context = _context()
            update = self.close_update(state, context)
            store = _store()
            if store is not None and "user_facts" in update:
                key = facts_location(self._user_of(state, update, context))
                await store.aput(*key, self._facts_value(update))
            return update

        return RunnableLambda(close, afunc=aclose, name=CLOSE_NODE)

    # --- user facts in the store -------------------------------------------------------

    @staticmethod
    def _starts_session(
        state: dict[str, Any], update: dict[str, Any], context: SessionContext
    ) -> bool:
        """Whether this run opens a session (the time to load the user's facts)."""
        if context.session is not None:
            return context.session.conversation_count == 0 and "turn" not in update
        before = (state.get("session") or {}).get("session_id")
        session = update.get("session") or {}
        return bool(session.get("status") == "active" and before != session.get("session_id"))

    @staticmethod
    def _user_of(state: dict[str, Any], update: dict[str, Any], context: SessionContext) -> str:
        if context.session is not None:
            return context.session.user_id
        session = update.get("session") or state.get("session") or {}
        return str(session.get("user_id", context.user_id))

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
