"""`MemoryStore` (deprecated): the original Node.js service's memory class, mapped onto sessions.

Kept so code written against the original keeps working while it moves to `SessionManager`
or the HTTP API. Its methods are the original's in Python form (`getMemory` is `get_memory`,
`addToConversationHistory` is `add_to_conversation_history`, ...); the README's "Migrating
from the Node.js service" maps each onto sessions.

Every method is a coroutine (the original's returned promises). A conversation added here
is stored like one the agent answered, in the same thread: the API and the agent see it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from session_policy.cleanup import Cleanup
from session_policy.config import SessionSettings
from session_policy.ids import validate_user_id
from session_policy.manager import Graph, SessionManager
from session_policy.models import SessionLimits, iso, now_ms
from session_policy.policy import (
    CLOSE_NODE,
    GATE_NODE,
    SessionContext,
    SessionPolicy,
    SessionThreadState,
    UserFacts,
    facts_location,
)
from session_policy.storage import Backing, Storage
from session_policy.transcript import interactions, text_messages

DEPRECATION = (
    "MemoryStore is deprecated: use session_policy.manager.SessionManager (or the HTTP API: "
    "/chat, /sessions/{userId}/history); see the README's 'Migrating from the Node.js service'"
)
RECORD_NODE = "record"
_MEMORY_KEY = re.compile(r"user:(?P<user>[^:]+):(?P<fact>name|units)")


@dataclass(frozen=True)
class RecordedTurn(SessionContext):
    """The run context of a recorded conversation: the session's, plus the answer given."""

    response: str = ""


def _record(state: SessionThreadState, runtime: Runtime[RecordedTurn]) -> dict[str, Any]:
    """The answer given with the message, as the agent's reply would be stored."""
    response = runtime.context.response
    return {"messages": [AIMessage(response, response_metadata={"timestamp": now_ms()})]}


def recording_graph(backing: Backing, policy: SessionPolicy) -> Graph:
    """The agent's turn with a given answer in place of the model: gate -> record -> close."""
    builder = StateGraph(SessionThreadState, context_schema=RecordedTurn)
    builder.add_node(GATE_NODE, policy.gate_node())
    builder.add_node(RECORD_NODE, _record)
    builder.add_node(CLOSE_NODE, policy.close_node())
    builder.add_edge(START, GATE_NODE)
    builder.add_conditional_edges(
        GATE_NODE, policy.routes_after_gate, {"continue": RECORD_NODE, "__end__": END}
    )
    builder.add_edge(RECORD_NODE, CLOSE_NODE)
    builder.add_edge(CLOSE_NODE, END)
    return builder.compile(checkpointer=backing.checkpointer, store=backing.facts)


def _memory_key(key: str) -> tuple[str, str]:
    match = _MEMORY_KEY.fullmatch(key)
    if match is None:
        raise KeyError(
            f"{key!r}: MemoryStore keeps only 'user:<userId>:name' and 'user:<userId>:units' "
            "(what outlives a session); conversations go through add_to_conversation_history"
        )
    return validate_user_id(match["user"]), match["fact"]


class MemoryStore:
    """Deprecated: the original's memory class on sessions (see the module docstring).

    `use_redis=False` keeps everything in this process; otherwise `redis_url` (or
    `REDIS_URL`) is used, with the same in-memory fallback as the server, and no URL at
    all means memory too. Settings (limits, TTLs) come from the environment unless given.
    """

    def __init__(
        self,
        use_redis: bool = True,
        *,
        redis_url: str | None = None,
        settings: SessionSettings | None = None,
    ) -> None:
        warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=2)
        self.settings = settings or SessionSettings()
        url = (redis_url or self.settings.redis_url) if use_redis else None
        self.storage = Storage(self.settings, url)
        self.policy = SessionPolicy(
            SessionLimits.from_settings(self.settings), facts_ttl_s=self.settings.user_memory_ttl
        )
        self.manager = SessionManager(
            self.storage,
            lambda backing: recording_graph(backing, self.policy),
            end_sessions_on_shutdown=self.settings.end_sessions_on_shutdown,
            queue_s=self.settings.turn_queue_seconds,
        )
        self.cleanup = Cleanup(self.storage, self.settings.cleanup_interval_seconds)
        self.initialized = False

    @property
    def redis_connected(self) -> bool:
        return self.storage.writable

    async def initialize(self) -> None:
        """Connect and start the cleanup timer; done by the first call that needs it."""
        if self.initialized:
            return
        await self.storage.start()
        self.cleanup.start()
        self.initialized = True

    async def disconnect(self) -> None:
        """Stop as the server does: memory sessions end (`shutdown`), Redis sessions stay
        for their next turn unless END_SESSIONS_ON_SHUTDOWN, then the connection closes."""
        if not self.initialized:
            return
        await self.cleanup.stop()
        await self.manager.shutdown()
        await self.storage.close()
        self.initialized = False

    async def __aenter__(self) -> MemoryStore:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()

    # --- user memory (what outlives a session) ------------------------------------------

    async def set_memory(self, key: str, value: str, ttl: int = 3600) -> None:
        """Remember `user:<id>:name` (or `:units`) for `ttl` seconds, as the original did."""
        user_id, fact = _memory_key(key)
        if ttl <= 0:
            raise ValueError(f"ttl={ttl}: give the seconds to remember it, at least 1")
        await self.initialize()
        store = self.storage.current.facts
        namespace, item = facts_location(user_id)
        facts: UserFacts = self.policy.read_facts(await store.aget(namespace, item))
        facts[fact] = str(value)  # type: ignore[literal-required]
        stored = self.policy.facts_value(facts, ttl)  # its expiry travels with it
        if store.supports_ttl:  # and Redis drops the key then, too
            await store.aput(namespace, item, stored, ttl=ttl / 60)
        else:
            await store.aput(namespace, item, stored)

    async def get_memory(self, key: str) -> str | None:
        """What `set_memory` (or the user, in a conversation) said, if not expired."""
        user_id, fact = _memory_key(key)
        await self.initialize()
        item = await self.storage.current.facts.aget(*facts_location(user_id))
        value: str | None = self.policy.read_facts(item).get(fact)  # type: ignore[assignment]
        return value

    # --- conversations ----------------------------------------------------------------

    async def add_to_conversation_history(self, user_id: str, message: str, response: str) -> str:
        """Store one conversation in the user's session; returns that session's id.

        Counted like any conversation: the session ends at MAX_CONVERSATIONS_PER_SESSION
        (and the next one starts in a new session), or when a time limit has passed.
        """
        await self.initialize()
        result = await self.manager.chat(user_id, message, context={"response": response})
        return result.session_id

    async def get_conversation_history(self, user_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The current session's last `limit` conversations: `{timestamp, message, response,
        sessionId}`; empty without an active session (an ended session's data is gone)."""
        await self.initialize()
        sessions = await self.manager.active_sessions(user_id)
        if not sessions:
            return []
        current = sessions[0]
        backing = self.storage.backing(current.backend)
        return await self._interactions(current.session_id, backing, limit)

    async def get_session_conversation_history(
        self, session_id: str, limit: int = 10
    ) -> list[dict[str, Any]]:
        """One active session's last `limit` conversations; empty once it ended."""
        await self.initialize()
        for backing in (self.storage.current, self.storage.memory):
            session = await backing.sessions.get(session_id)
            if session is not None:
                return await self._interactions(session_id, backing, limit)
        return []

    async def _interactions(self, session_id: str, backing: Backing, limit: int) -> list[Any]:
        graph = self.manager.graph(backing)
        state = await graph.aget_state({"configurable": {"thread_id": session_id}})
        messages = text_messages(state.values.get("messages", []), 2 * limit + 1)
        return interactions(messages, session_id)[-limit:]

    # --- sessions ---------------------------------------------------------------------

    async def get_session_stats(self, user_id: str) -> dict[str, Any]:
        """`{activeSessions, sessions: [...]}` as the original (durations in seconds)."""
        await self.initialize()
        sessions = await self.manager.active_sessions(user_id)
        now = self.manager.clock_ms()
        return {"activeSessions": len(sessions), "sessions": [s.to_api(now) for s in sessions]}

    async def end_user_session(self, user_id: str, reason: str = "manual") -> list[str]:
        """End the user's sessions now; their data is gone when this returns. Returns their
        ids. Recorded with end reason `manual` whatever `reason` says (as the API does)."""
        await self.initialize()
        return await self.manager.end_user_sessions(user_id, "manual")

    async def get_memory_stats(self) -> dict[str, Any]:
        """Where sessions are stored, and the session statistics there."""
        await self.initialize()
        return {
            "timestamp": iso(now_ms()),
            "storageMode": self.storage.mode,
            "redisConnected": self.redis_connected,
            "sessions": await self.storage.current.sessions.stats(),
        }

    async def cleanup_expired_sessions(self) -> list[dict[str, Any]]:
        """One cleanup sweep now; the records of the sessions it ended."""
        await self.initialize()
        return [record.to_api() for record in await self.cleanup.run_once()]
