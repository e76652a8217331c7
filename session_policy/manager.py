"""The session manager: puts each user message into the user's session and runs the agent.

Per message: find or atomically start the user's session (Redis, or memory while Redis is
down), run the graph on that session's thread, then act on the policy nodes' verdict:
record the conversation, or end the session. A message that finds its session ended is
answered in a new session, so no message is lost; the same holds when Redis fails in the
middle of a turn (the message is answered again from memory).

A turn is stored whole or not at all: the graph runs with `durability="exit"`, so its
checkpoint is written once, when the turn is done (before its answer is returned), instead
of after every step. A turn that fails half-way leaves the thread as it was before the
message, which is also what lets the message be answered again without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal, cast

from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Durability

from session_policy.events import LogEvents, SessionEvents, TurnEvent
from session_policy.ids import validate_user_id
from session_policy.models import Backend, EndedSession, EndReason, Session, iso, now_ms
from session_policy.policy import SessionContext, TurnVerdict
from session_policy.storage import Backing, Storage, StorageUnavailableError

log = logging.getLogger(__name__)

Graph = CompiledStateGraph[Any, Any, Any, Any]
GraphFactory = Callable[[Backing], Graph]
MAX_ATTEMPTS = 4  # expired session, ended by the gate, Redis failing: each costs one retry
# One checkpoint per turn, written when the turn is done (see the module docstring).
DURABILITY: Durability = "exit"
TURN_LOCK_MS = 120_000  # a crashed process's lock frees itself after this
# How often a queued message asks for the turn lock again (DOUBLE_TEXTING=enqueue), and how
# long its place is kept without asking: a bound on how long a waiter whose process died
# holds up the queue, with room for a busy event loop or a slow Redis round trip.
QUEUE_POLL_S = 0.05
QUEUE_PLACE_MS = 5_000
# A turn's last writes (its record, its lock's release) that Redis failed to take are made
# once Redis is back: tried again after 0.1 s, doubling to every 2 s, for TURN_LOCK_MS (the
# lock expires by itself then anyway).
RELEASE_RETRY_S = 0.1
RELEASE_RETRY_MAX_S = 2.0


class SessionBusyError(RuntimeError):
    """Another message of the same user is still being answered (the API answers 409)."""


@dataclass(frozen=True)
class TurnResult:
    """The outcome of one conversation (a user message and the agent's reply)."""

    response: str
    user_id: str
    session_id: str
    conversation_count: int
    session_status: Literal["active", "ended"]
    end_reason: EndReason | None
    timestamp_ms: int
    storage: Backend

    def to_api(self) -> dict[str, Any]:
        return {
            "response": self.response,
            "userId": self.user_id,
            "sessionId": self.session_id,
            "conversationCount": self.conversation_count,
            "sessionStatus": self.session_status,
            "endReason": self.end_reason,
            "timestamp": iso(self.timestamp_ms),
            "storage": self.storage,
        }


@dataclass(frozen=True)
class _Run:
    """One message to answer, as the caller asked for it."""

    message: str
    stream: bool
    config: RunnableConfig | None
    context: dict[str, Any]  # more fields of the run's context (see `SessionManager.turn`)
    received_ms: int  # when it arrived: the session limits are judged then


@dataclass
class _TurnLock:
    """The user's turn lock held by one turn, and the session it was taken with."""

    backing: Backing
    token: str
    session: Session | None = None  # from `begin_turn`: the first attempt needs no lookup
    released: bool = False


class SessionManager:
    """Runs conversations in sessions. One instance per process."""

    def __init__(
        self,
        storage: Storage,
        graph_factory: GraphFactory,
        *,
        clock_ms: Callable[[], int] = now_ms,
        end_sessions_on_shutdown: bool = False,
        events: SessionEvents | None = None,
        queue_s: float = 0.0,
    ) -> None:
        """`queue_s`: how long a user's message waits for their running turn, in arrival
        order (`SessionSettings.turn_queue_seconds`); 0 refuses it at once."""
        self.storage = storage
        self.queue_s = queue_s
        self.graph_factory = graph_factory
        self.clock_ms = clock_ms
        self.end_sessions_on_shutdown = end_sessions_on_shutdown
        self.events = events or LogEvents()
        self._graphs: dict[Backend, Graph] = {}
        self._served: set[str] = set()  # Redis sessions this process ran turns in
        self._pending: set[asyncio.Task[None]] = set()  # last writes waiting for Redis

    def graph(self, backing: Backing) -> Graph:
        if backing.name not in self._graphs:
            self._graphs[backing.name] = self.graph_factory(backing)
        return self._graphs[backing.name]

    # --- finding sessions ---------------------------------------------------------------

    async def session_for(self, user_id: str) -> tuple[Backing, Session]:
        """The user's active session (memory first: one started during an outage) or a new one."""
        memory = self.storage.memory
        session = await memory.sessions.active(user_id)
        if session is not None:
            return memory, session
        current = self.storage.current
        if current is not memory:
            try:
                return current, await current.sessions.get_or_start(user_id, self.clock_ms())
            except Exception as error:
                if not self.storage.unavailable(error):
                    raise
        return memory, await memory.sessions.get_or_start(user_id, self.clock_ms())

    async def active_sessions(self, user_id: str) -> list[Session]:
        validate_user_id(user_id)
        found = []
        for backing in self.storage.readable():
            try:
                session = await backing.sessions.active(user_id)
            except Exception as error:
                if not self.storage.unavailable(error):
                    raise
                continue
            if session is not None:
                found.append(session)
        return found

    async def ended_sessions(self, user_id: str, limit: int) -> list[EndedSession]:
        """The user's ended-session records from every backend, newest first."""
        validate_user_id(user_id)
        records: list[EndedSession] = []
        for backing in self.storage.readable():
            try:
                records += await backing.sessions.ended(user_id, limit)
            except Exception as error:
                if not self.storage.unavailable(error):
                    raise
        return sorted(records, key=lambda r: -r.endTime)[:limit]

    async def ended_record(self, session_id: str) -> EndedSession | None:
        for backing in self.storage.readable():
            try:
                record = await backing.sessions.ended_record(session_id)
            except Exception as error:
                if not self.storage.unavailable(error):
                    raise
                continue
            if record is not None:
                return record
        return None

    # --- conversations -----------------------------------------------------------------

    async def chat(
        self,
        user_id: str,
        message: str,
        *,
        config: RunnableConfig | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> TurnResult:
        """One conversation, answered in full."""
        turn = self.turn(user_id, message, stream=False, config=config, context=context)
        async with aclosing(turn) as events:
            async for event in events:
                if isinstance(event, TurnResult):
                    return event
        raise AssertionError("turn() always ends with a TurnResult")

    async def turn(
        self,
        user_id: str,
        message: str,
        *,
        stream: bool = True,
        config: RunnableConfig | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[str | TurnResult, None]:
        """The answer's tokens as they come (when `stream`), then the `TurnResult`.

        `config` (callbacks, tags...) is passed on to the graph run, so callers such as
        LangServe see the agent's inner events; its thread is always the session's.
        `context`: more fields of the run's context, for a graph whose context schema
        extends `SessionContext` (which the manager fills in).
        """
        validate_user_id(user_id)
        # The message's time, for the session limits: time spent waiting for this busy
        # process (queueing, Redis round trips) is not the user's inactivity.
        received_ms = self.clock_ms()
        lock = await self._lock(user_id)
        try:
            run = _Run(message, stream, config, dict(context or {}), received_ms)
            async for event in self._turn(user_id, run, lock):
                yield event
        finally:
            if not lock.released:
                await self._unlock(lock, user_id)

    async def _lock(self, user_id: str) -> _TurnLock:
        """One turn at a time per user: concurrent messages wait in line (`queue_s`) or
        are refused, never interleaved. `SessionBusyError` when the wait is over."""
        token = uuid.uuid4().hex
        if not self.queue_s:
            lock = await self._try(user_id, token, 0)
        else:
            deadline = time.monotonic() + self.queue_s
            lock = None
            try:
                lock = await self._try(user_id, token, QUEUE_PLACE_MS)
                while lock is None and time.monotonic() < deadline:
                    await asyncio.sleep(QUEUE_POLL_S)
                    lock = await self._try(user_id, token, QUEUE_PLACE_MS)
            finally:
                if lock is None:  # timed out, cancelled (client gone) or failed
                    await self._leave_queue(user_id, token)
        if lock is None:
            waited = f" (this one waited {self.queue_s:g} s)" if self.queue_s else ""
            raise SessionBusyError(f"a message of {user_id!r} is still being answered{waited}")
        return lock

    async def _try(self, user_id: str, token: str, queue_ms: int) -> _TurnLock | None:
        """One try for the turn lock, in the user's queue with `queue_ms`.

        Usually the lock and the user's session come in one round trip (`begin_turn`); a
        user with a memory session from an outage keeps it, so only the lock is taken.
        """
        backing = self.storage.current
        in_memory = await self.storage.memory.sessions.active(user_id) is not None
        try:
            return await self._take(backing, user_id, token, queue_ms, with_session=not in_memory)
        except Exception as error:
            if not self.storage.unavailable(error):
                # The script may have taken the lock before it failed: don't leave the
                # user locked out for TURN_LOCK_MS by a bug.
                with contextlib.suppress(Exception):
                    await backing.sessions.unlock(user_id, token)
                raise
            memory = self.storage.memory
            return await self._take(memory, user_id, token, queue_ms, with_session=False)

    async def _take(
        self, backing: Backing, user_id: str, token: str, queue_ms: int, *, with_session: bool
    ) -> _TurnLock | None:
        sessions = backing.sessions
        if with_session:
            now = self.clock_ms()
            session = await sessions.begin_turn(
                user_id, token, TURN_LOCK_MS, now, queue_ms=queue_ms
            )
            return None if session is None else _TurnLock(backing, token, session)
        locked = await sessions.try_lock(user_id, token, TURN_LOCK_MS, queue_ms=queue_ms)
        return _TurnLock(backing, token) if locked else None

    async def _leave_queue(self, user_id: str, token: str) -> None:
        """Free the place of a message that stopped waiting (else it expires by itself)."""
        for backing in self.storage.readable():
            with contextlib.suppress(Exception):
                await backing.sessions.leave_queue(user_id, token)

    async def _unlock(self, lock: _TurnLock, user_id: str) -> None:
        # Redis failed during this turn (it has been answered from memory): the answer does
        # not wait for Redis a second time, the lock is released in the background.
        redis_failed = lock.backing is not self.storage.memory and not self.storage.writable
        if not redis_failed and await self._release(lock, user_id):
            return
        self._when_back(lambda: self._release(lock, user_id))

    async def _release(self, lock: _TurnLock, user_id: str) -> bool:
        """Release the lock; False if Redis can't be reached now."""
        try:
            await lock.backing.sessions.unlock(user_id, lock.token)
        except Exception as error:
            if not self.storage.unavailable(error):
                raise
            return False
        return True

    def _when_back(self, write: Callable[[], Awaitable[bool]]) -> None:
        """Make `write` (False: Redis can't take it now) in the background until Redis takes
        it (a failover, a restart). A lock left held would make the user's next messages wait
        or be refused until it expires; a record left unmade would count a turn twice."""

        async def until_taken() -> None:
            deadline = time.monotonic() + TURN_LOCK_MS / 1000
            pause = RELEASE_RETRY_S
            while not await write() and time.monotonic() < deadline:
                await asyncio.sleep(pause)
                pause = min(pause * 2, RELEASE_RETRY_MAX_S)

        task = asyncio.get_running_loop().create_task(until_taken())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _turn(
        self, user_id: str, run: _Run, lock: _TurnLock
    ) -> AsyncIterator[str | TurnResult]:
        started = time.perf_counter()
        for _ in range(MAX_ATTEMPTS):
            if lock.session is not None:  # taken with the lock
                backing, session, lock.session = lock.backing, lock.session, None
            else:
                backing, session = await self.session_for(user_id)
            # Known expired: ended without a graph run (the gate would end it the same way).
            expired = session.expired_reason(run.received_ms)
            if expired:
                await self.end_session(backing, session.session_id, expired)
                continue
            state: dict[str, Any] | None = None
            try:
                async for event in self._run(backing, session, run):
                    if isinstance(event, str):
                        yield event
                    else:
                        state = event
            except Exception as error:
                if not self.storage.unavailable(error):
                    raise
                continue
            assert state is not None
            result = await self._settle(backing, session, state, lock)
            if result is not None:
                self.events.turn(
                    TurnEvent(
                        user_id=result.user_id,
                        session_id=result.session_id,
                        conversation_count=result.conversation_count,
                        session_status=result.session_status,
                        storage=result.storage,
                        latency_s=time.perf_counter() - started,
                    )
                )
                yield result
                return
        raise RuntimeError(f"could not place a message of {user_id!r} in a session")

    async def _run(
        self, backing: Backing, session: Session, run: _Run
    ) -> AsyncIterator[str | dict[str, Any]]:
        graph = self.graph(backing)
        config = merge_configs(run.config, {"configurable": {"thread_id": session.session_id}})
        # The graph's context schema: SessionContext, or one extending it (`run.context`).
        schema = graph.context_schema or SessionContext
        context = schema(
            user_id=session.user_id,
            session=session,
            received_at_ms=run.received_ms,
            **run.context,
        )
        human = HumanMessage(run.message, response_metadata={"timestamp": self.clock_ms()})
        if not run.stream:
            yield await graph.ainvoke(
                {"messages": [human]}, config, context=context, durability=DURABILITY
            )
            return
        state: dict[str, Any] = {}
        async for mode, payload in graph.astream(
            {"messages": [human]},
            config,
            context=context,
            stream_mode=["messages", "values"],
            durability=DURABILITY,
        ):
            if mode == "values":
                state = cast(dict[str, Any], payload)
                continue
            chunk, metadata = cast(tuple[Any, dict[str, Any]], payload)
            from_model = metadata.get("langgraph_node") == "model"
            if from_model and isinstance(chunk, AIMessageChunk) and chunk.text:
                yield chunk.text
        yield state

    async def _settle(
        self, backing: Backing, session: Session, state: dict[str, Any], lock: _TurnLock
    ) -> TurnResult | None:
        """Act on the policy's verdict; None means "answer again in a new session".

        When the session goes on, recording the conversation also releases the turn lock
        (same store: one round trip); a session that ends keeps the lock until it is gone.
        """
        verdict: TurnVerdict | None = state.get("turn")
        if verdict is None or not verdict["answered"]:
            reason = verdict["end_reason"] if verdict else None
            await self.end_session(backing, session.session_id, reason or "duration")
            return None
        now = self.clock_ms()
        count = verdict["conversation_count"]
        end_reason = verdict["end_reason"]
        release = lock.backing is backing and end_reason is None
        unlock = (session.user_id, lock.token) if release else None
        recorded: Session | None = None

        async def record() -> bool:
            nonlocal recorded
            try:
                recorded = await backing.sessions.record_turn(session, now, count, unlock=unlock)
            except Exception as error:
                if not self.storage.unavailable(error):
                    raise
                return False
            return True

        taken = await record()
        if not taken:
            # Redis failed after the turn was saved in its thread: the count is recorded (and
            # the lock released with it) once Redis is back, before this user's next turn.
            self._when_back(record)
        lock.released = release
        status: Literal["active", "ended"] = "active"
        if end_reason is not None:
            status = "ended"
            await self.end_session(backing, session.session_id, end_reason)
        elif taken and recorded is None:  # ended meanwhile (manual end, cleanup): data gone
            status = "ended"
        if backing.name == "redis":
            self._served.add(session.session_id)
        messages: list[BaseMessage] = state["messages"]
        return TurnResult(
            response=messages[-1].text,
            user_id=session.user_id,
            session_id=session.session_id,
            conversation_count=count,
            session_status=status,
            end_reason=end_reason,
            timestamp_ms=now,
            storage=backing.name,
        )

    # --- ending sessions -----------------------------------------------------------------

    async def end_session(
        self, backing: Backing, session_id: str, reason: EndReason, *, required: bool = False
    ) -> EndedSession | None:
        """End the session once; None if it had ended already, or if Redis can't end it
        now (then, with `required`, `StorageUnavailableError`: the caller asked for it)."""
        try:
            record = await backing.sessions.end(session_id, reason, self.clock_ms())
        except Exception as error:
            if not self.storage.unavailable(error):
                raise
            if required:
                raise StorageUnavailableError(
                    f"{self.storage.reason}: session {session_id!r} could not be ended now "
                    "(it still ends by itself at its deadline)"
                ) from error
            return None
        self._served.discard(session_id)
        if record is not None:
            self.events.session_ended(record, backing.name)
        return record

    async def end_user_sessions(self, user_id: str, reason: EndReason = "manual") -> list[str]:
        """End every active session of the user; their data is gone when this returns
        (`StorageUnavailableError` if Redis can't end one now)."""
        ended = []
        for session in await self.active_sessions(user_id):
            backing = self.storage.backing(session.backend)
            if await self.end_session(backing, session.session_id, reason, required=True):
                ended.append(session.session_id)
        return ended

    async def shutdown(self) -> list[str]:
        """End memory sessions (and, if configured, the Redis sessions this process served)."""
        # Writes still waiting for Redis are dropped: a lock expires by itself.
        for task in list(self._pending):
            task.cancel()
        ended = []
        memory = self.storage.memory
        for session in list(getattr(memory.sessions, "sessions", [])):
            if await self.end_session(memory, session.session_id, "shutdown"):
                ended.append(session.session_id)
        if self.end_sessions_on_shutdown and self.storage.redis is not None:
            for session_id in list(self._served):
                if await self.end_session(self.storage.redis, session_id, "shutdown"):
                    ended.append(session_id)
        return ended
