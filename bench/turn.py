"""Target 1, turn overhead: the same turns on each checkpointer, interleaved turn by turn.

Three levels; in each, every configuration gets its own `threads` conversations that grow
from empty to `turns` turns. The turns are interleaved: turn t of thread i runs on every
configuration in a row (in an order that rotates at each step), so a burst of load on this
shared machine hits all of them alike. The time of each turn is summed per configuration
and round; ratios are taken within a round, then the median over the rounds is reported.
The first round is a warm-up and is discarded.

* echo graph: one node echoing the last message, `MessagesState` (the earlier baseline);
* agent graph: `agent.build_graph` with the offline model, simulated weather and the session
  policy as the server builds it (`server.service.make_manager`), the store of each storage
  (`RedisUserStore` for every Redis row, `InMemoryStore` for memory); on Redis, thread ids
  are sessions started by `RedisSessionStore`, so every write of our saver is guarded by a
  real session meta key and the thread gets its deadline;
* SessionManager: a whole `/chat` turn (`SessionManager.chat`: turn lock, session lookup,
  the graph, the conversation count) on `Storage` with Redis vs the same `Storage` on memory
  (no REDIS_URL); the other rows swap the Redis checkpointer only. Every row runs the graph
  as the manager does (durability "exit").

On the graph levels, "ours" runs as the server runs it (durability "exit", guarded writes,
the thread read from Redis at every turn); InMemorySaver and the stock savers run with
LangGraph's defaults, as a developer would pick them up, and again with durability "exit",
the durability the peers are compared at. The `bench.reference_saver` rows measure the best
any saver could do: LangGraph's own checkpointing cost, without and with one Redis round
trip per read and write. The ablation rows ("ours-cached", `bench.cached_saver`) show what an
in-process cache of the latest checkpoint would buy. Rows marked "(info)" are not part of
any target.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.checkpoint.redis.ashallow import AsyncShallowRedisSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import Durability

from agent import build_graph
from agent.facts import extract_facts
from bench.cached_saver import CachedSessionSaver
from bench.common import (
    TIMES,
    Section,
    Target,
    bench_settings,
    fmt,
    message,
    offline_parts,
    rotated,
)
from bench.lite import median
from bench.reference_saver import ReferenceSaver
from server.service import make_manager
from session_policy.checkpointer import RedisSessionSaver
from session_policy.manager import SessionManager
from session_policy.models import SessionLimits
from session_policy.policy import SessionContext, SessionPolicy
from session_policy.redis_store import RedisSessionStore
from session_policy.storage import Storage
from session_policy.user_memory import RedisUserStore

Graph = CompiledStateGraph[Any, Any, Any, Any]
TurnFn = Callable[[int], Awaitable[None]]

MAX_OVERHEAD = 1.5  # ours / InMemorySaver
MAX_OVER_FLOOR = 1.3  # ours / reference saver with one round trip per read and write (agent)
MIN_AHEAD = 1.3  # AsyncRedisSaver, AsyncShallowRedisSaver at durability "exit" / ours (agent)
LEVELS = ("echo", "agent", "manager")


@dataclass(frozen=True)
class TurnSizes:
    threads: int = 5
    turns: int = 20
    rounds: int = 5
    warmup_rounds: int = 1


@dataclass
class Prepared:
    """The threads of one configuration for one round: one callable per thread."""

    threads: list[TurnFn]
    finish: Callable[[], Awaitable[None]]


@dataclass
class Config:
    """One row of the table."""

    key: str
    label: str
    prepare: Callable[[int], Awaitable[Prepared]]
    info: bool = False
    per_round_ms: list[float] = field(default_factory=list)


def echo_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> Graph:
    def echo(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [AIMessage(state["messages"][-1].text)]}

    builder = StateGraph(MessagesState)
    builder.add_node("echo", echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    return builder.compile(checkpointer=checkpointer)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _nothing() -> None:
    return None


class Bench:
    """The Redis connections, stores and stock savers shared by the three levels."""

    def __init__(self, url: str, sizes: TurnSizes) -> None:
        self.url = url
        self.sizes = sizes
        self.settings = bench_settings(url)
        self.limits = SessionLimits.from_settings(self.settings)
        self.client = aioredis.Redis.from_url(url)
        self.sessions = RedisSessionStore(
            self.client,
            self.limits,
            retention_ms=self.settings.session_history_retention * 1000,
            grace_ms=max(2 * self.settings.cleanup_interval, 60_000),
        )
        self.model, self.weather = offline_parts()
        self.policy = SessionPolicy(
            self.limits, extract_facts=extract_facts, facts_ttl_s=self.settings.user_memory_ttl
        )
        self.stack = contextlib.AsyncExitStack()
        self._stock: AsyncRedisSaver | None = None
        self._shallow: AsyncShallowRedisSaver | None = None

    @property
    def stock(self) -> AsyncRedisSaver:
        assert self._stock is not None
        return self._stock

    @property
    def shallow(self) -> AsyncShallowRedisSaver:
        assert self._shallow is not None
        return self._shallow

    async def __aenter__(self) -> Bench:
        # `async with` runs `asetup()` (their search indexes) and names the client.
        self._stock = await self.stack.enter_async_context(AsyncRedisSaver(redis_url=self.url))
        self._shallow = await self.stack.enter_async_context(
            AsyncShallowRedisSaver(redis_url=self.url)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()
        await self.client.aclose()

    def ours(self) -> RedisSessionSaver:
        """Our saver as `Storage` builds it (guarded; keeps the latest checkpoint)."""
        return RedisSessionSaver(self.client)

    def facts_store(self) -> RedisUserStore:
        return RedisUserStore(self.client, default_ttl_minutes=self.settings.user_memory_ttl / 60)

    def agent_graph(self, checkpointer: BaseCheckpointSaver[Any] | None, store: BaseStore) -> Graph:
        return build_graph(
            checkpointer, store=store, model=self.model, weather=self.weather, policy=self.policy
        )

    # ------------------------------------------------------------------ graph levels

    def graph_config(
        self,
        key: str,
        label: str,
        graph: Graph,
        saver: BaseCheckpointSaver[Any] | None,
        *,
        agent: bool,
        guarded: bool = False,
        durability: Durability | None = None,
        info: bool = False,
    ) -> Config:
        async def prepare(round_: int) -> Prepared:
            thread_ids: list[str] = []
            threads: list[TurnFn] = []
            for i in range(self.sizes.threads):
                user = f"bench-{key}-{round_}-{i}"
                if guarded:  # a real session: its meta key guards the thread's writes
                    session = await self.sessions.get_or_start(user, _now_ms())
                else:
                    started = _now_ms()
                    thread_id = f"session:{user}:{started}"
                    session = self.limits.new_session(thread_id, user, started, "memory")
                # The agent graph gets its session as the manager passes it (the run's
                # context); the record's count stays 0 here, so no run is ended by the limit.
                context = SessionContext(user_id=user, session=session) if agent else None
                config: RunnableConfig = {"configurable": {"thread_id": session.session_id}}
                thread_ids.append(session.session_id)
                threads.append(self._turns(graph, config, context, durability))

            async def finish() -> None:  # keep Redis the same size every round
                for thread_id in thread_ids:
                    if guarded:
                        await self.sessions.end(thread_id, "manual", _now_ms())
                    elif saver is not None:
                        await saver.adelete_thread(thread_id)

            return Prepared(threads, finish)

        return Config(key, label, prepare, info)

    @staticmethod
    def _turns(
        graph: Graph,
        config: RunnableConfig,
        context: SessionContext | None,
        durability: Durability | None,
    ) -> TurnFn:
        async def turn(n: int) -> None:
            if context is not None:  # the agent graph
                human = HumanMessage(message(n), response_metadata={"timestamp": _now_ms()})
            else:
                human = HumanMessage(f"hello {n}")
            await graph.ainvoke(
                {"messages": [human]}, config, context=context, durability=durability
            )

        return turn

    def json_set_config(self) -> Config:
        """Not a graph: one SET of the conversation as a JSON list per turn (a floor)."""

        async def prepare(round_: int) -> Prepared:
            keys = [f"bench:json:{round_}:{i}" for i in range(self.sizes.threads)]

            def thread(key: str) -> TurnFn:
                messages: list[BaseMessage] = []

                async def turn(n: int) -> None:
                    messages.extend([HumanMessage(f"hello {n}"), AIMessage(f"hello {n}")])
                    await self.client.set(key, json.dumps([m.model_dump() for m in messages]))

                return turn

            async def finish() -> None:
                await self.client.delete(*keys)

            return Prepared([thread(key) for key in keys], finish)

        return Config(
            "json-set", "one SET of the JSON message list, no graph (info)", prepare, True
        )

    def _saver_rows(
        self,
        graph_of: Callable[[BaseCheckpointSaver[Any] | None, bool], Graph],
        *,
        agent: bool,
    ) -> list[Config]:
        """The rows of a graph level; `graph_of(saver, facts on Redis)` builds the graph."""
        memory, ours, cached = InMemorySaver(), self.ours(), CachedSessionSaver(self.client)
        reference, reference_rt = ReferenceSaver(), ReferenceSaver(self.client)
        exit_: Durability = "exit"

        def row(
            key: str,
            label: str,
            saver: BaseCheckpointSaver[Any] | None,
            *,
            redis_facts: bool,
            durability: Durability | None = None,
            guarded: bool = False,
            info: bool = True,
        ) -> Config:
            graph = graph_of(saver, redis_facts)
            return self.graph_config(
                key,
                label,
                graph,
                saver,
                agent=agent,
                guarded=guarded,
                durability=durability,
                info=info,
            )

        return [
            row("none", "no checkpointer (info)", None, redis_facts=False),
            row("memory", "InMemorySaver", memory, redis_facts=False, info=False),
            row(
                "memory-exit",
                'InMemorySaver, durability="exit" (info)',
                memory,
                redis_facts=False,
                durability=exit_,
            ),
            row(
                "ours",
                'RedisSessionSaver (ours), as the server runs it: durability="exit"',
                ours,
                redis_facts=True,
                durability=exit_,
                guarded=True,
                info=False,
            ),
            row(
                "ours-cached",
                "ablation: ours + in-process latest-checkpoint cache (info, bench.cached_saver)",
                cached,
                redis_facts=True,
                durability=exit_,
                guarded=True,
            ),
            row(
                "ours-default",
                "RedisSessionSaver, LangGraph's default durability (info)",
                ours,
                redis_facts=True,
                guarded=True,
            ),
            row("stock", "AsyncRedisSaver (info)", self.stock, redis_facts=True),
            row(
                "stock-exit",
                'AsyncRedisSaver, durability="exit"',
                self.stock,
                redis_facts=True,
                durability=exit_,
                info=not agent,
            ),
            row("shallow", "AsyncShallowRedisSaver (info)", self.shallow, redis_facts=True),
            row(
                "shallow-exit",
                'AsyncShallowRedisSaver, durability="exit"',
                self.shallow,
                redis_facts=True,
                durability=exit_,
                info=not agent,
            ),
            row(
                "reference",
                "reference: keeps references, no I/O (info, see bench.reference_saver)",
                reference,
                redis_facts=False,
                durability=exit_,
            ),
            row(
                "reference-rt",
                "reference + 1 Redis round trip per read and write",
                reference_rt,
                redis_facts=True,
                durability=exit_,
                info=not agent,
            ),
        ]

    def echo_configs(self) -> list[Config]:
        return [
            *self._saver_rows(lambda saver, _: echo_graph(saver), agent=False),
            self.json_set_config(),
        ]

    def agent_configs(self) -> list[Config]:
        facts = self.facts_store()

        def graph_of(saver: BaseCheckpointSaver[Any] | None, redis_facts: bool) -> Graph:
            return self.agent_graph(saver, facts if redis_facts else InMemoryStore())

        return self._saver_rows(graph_of, agent=True)

    # ------------------------------------------------------------------ manager level

    async def manager_configs(self) -> list[Config]:
        plans: list[tuple[str, str, str | None, BaseCheckpointSaver[Any] | None]] = [
            ("memory", "Storage on memory (InMemorySaver)", None, None),
            ("ours", "Storage on Redis (RedisSessionSaver, ours)", self.url, None),
            (
                "ours-cached",
                "ablation: Storage on Redis, ours + in-process latest-checkpoint cache (info)",
                self.url,
                CachedSessionSaver(self.client),
            ),
            ("stock", "Storage on Redis, AsyncRedisSaver swapped in (info)", self.url, self.stock),
            (
                "shallow",
                "Storage on Redis, AsyncShallowRedisSaver swapped in (info)",
                self.url,
                self.shallow,
            ),
            (
                "reference",
                "Storage on Redis, reference saver swapped in (info: no I/O)",
                self.url,
                ReferenceSaver(),
            ),
        ]
        configs = []
        for key, label, url, saver in plans:
            storage = Storage(bench_settings(url), url)
            if saver is not None:
                assert storage.redis is not None
                storage.redis.checkpointer = saver
            await storage.start()
            self.stack.push_async_callback(storage.close)
            manager = make_manager(self.settings, storage, model=self.model, weather=self.weather)
            config = self.manager_config(key, label, manager, saver)
            config.info = key not in ("memory", "ours")
            configs.append(config)
        return configs

    def manager_config(
        self,
        key: str,
        label: str,
        manager: SessionManager,
        stock: BaseCheckpointSaver[Any] | None,
    ) -> Config:
        async def prepare(round_: int) -> Prepared:
            users = [f"bench-m-{key}-{round_}-{i}" for i in range(self.sizes.threads)]
            session_ids: set[str] = set()

            def thread(user: str) -> TurnFn:
                async def turn(n: int) -> None:
                    result = await manager.chat(user, message(n))
                    session_ids.add(result.session_id)

                return turn

            async def finish() -> None:
                for user in users:
                    await manager.end_user_sessions(user)
                if stock is not None:  # the session index deletes our thread key only
                    for session_id in session_ids:
                        await stock.adelete_thread(session_id)

            return Prepared([thread(user) for user in users], finish)

        return Config(key, label, prepare)


async def _run_level(configs: list[Config], sizes: TurnSizes) -> None:
    turns = sizes.threads * sizes.turns
    step = 0
    for round_ in range(sizes.warmup_rounds + sizes.rounds):
        prepared = {c.key: await c.prepare(round_) for c in configs}
        spent = dict.fromkeys(prepared, 0.0)
        gc.collect()
        for n in range(sizes.turns):
            for i in range(sizes.threads):
                step += 1
                for config in rotated(configs, step):
                    started = time.perf_counter()
                    await prepared[config.key].threads[i](n)
                    spent[config.key] += time.perf_counter() - started
        for config in configs:
            await prepared[config.key].finish()
            if round_ >= sizes.warmup_rounds:
                config.per_round_ms.append(spent[config.key] / turns * 1000)


def _ratios(a: Config, b: Config) -> list[float]:
    return [x / y for x, y in zip(a.per_round_ms, b.per_round_ms, strict=True)]


async def run(url: str, sizes: TurnSizes, levels: list[str] | None = None) -> Section:
    started = time.perf_counter()
    section = Section(
        "turn",
        "1. Turn overhead (ms per turn: median of rounds; ratios taken within each round)",
        ["level", "configuration", "ms/turn", "min", "max", f"{TIMES} memory", f"{TIMES} ours"],
    )
    section.notes.append(
        f"{sizes.threads} threads {TIMES} {sizes.turns} turns per configuration and round, "
        f"{sizes.rounds} rounds (+{sizes.warmup_rounds} warm-up), configurations interleaved "
        "turn by turn"
    )
    async with Bench(url, sizes) as bench:

        async def echo() -> list[Config]:
            return bench.echo_configs()

        async def agent() -> list[Config]:
            return bench.agent_configs()

        makers: dict[str, tuple[str, Callable[[], Awaitable[list[Config]]]]] = {
            "echo": ("echo graph", echo),
            "agent": ("agent graph", agent),
            "manager": ("SessionManager turn", bench.manager_configs),
        }
        for level in levels or LEVELS:
            title, make = makers[level]
            configs = await make()
            await _run_level(configs, sizes)
            _report_level(section, level, title, configs)
    section.seconds = time.perf_counter() - started
    return section


def _report_level(section: Section, level: str, title: str, configs: list[Config]) -> None:
    by_key = {c.key: c for c in configs}
    memory, ours = by_key["memory"], by_key["ours"]
    figures: dict[str, Any] = {}
    for config in configs:
        vs_memory = median(_ratios(config, memory))
        vs_ours = median(_ratios(config, ours))
        figures[config.key] = {
            "label": config.label,
            "info": config.info,
            "ms_per_turn": config.per_round_ms,
            "median_ms": median(config.per_round_ms),
            "ratio_to_memory": vs_memory,
            "ratio_to_ours": vs_ours,
        }
        section.rows.append(
            [
                title,
                config.label,
                fmt(median(config.per_round_ms)),
                fmt(min(config.per_round_ms)),
                fmt(max(config.per_round_ms)),
                fmt(vs_memory) + TIMES,
                fmt(vs_ours) + TIMES,
            ]
        )
    section.figures[level] = figures

    def ratio(a: str, b: str) -> float:
        return median(_ratios(by_key[a], by_key[b]))

    same_durability = "memory-exit" in by_key
    overhead_detail = (
        f"{fmt(median(ours.per_round_ms))} vs {fmt(median(memory.per_round_ms))} ms/turn"
    )
    if same_durability:
        same = fmt(ratio("ours", "memory-exit"))
        overhead_detail += f'; ours ÷ InMemorySaver with durability="exit": {same}{TIMES}'
    section.targets.append(
        Target(
            "turn",
            f"{title}: ours ÷ InMemorySaver",
            ratio("ours", "memory"),
            MAX_OVERHEAD,
            "<=",
            TIMES,
            overhead_detail,
        )
    )
    if level == "agent":
        _agent_targets(section, title, ratio)
    cached = by_key.get("ours-cached")
    if cached is not None:
        section.ablations.append(
            f"{title}, in-process latest-checkpoint cache: "
            f"{fmt(median(cached.per_round_ms))} vs {fmt(median(ours.per_round_ms))} ms/turn "
            f"without it ({fmt(ratio('ours-cached', 'ours'))}{TIMES})"
        )


def _agent_targets(section: Section, title: str, ratio: Callable[[str, str], float]) -> None:
    """Close to the floor, ahead of the peers: the agent graph at durability "exit"."""
    section.targets.append(
        Target(
            "turn",
            f"{title}: ours ÷ reference saver with 1 round trip per read and write",
            ratio("ours", "reference-rt"),
            MAX_OVER_FLOOR,
            "<=",
            TIMES,
            f"without I/O: ours ÷ reference {fmt(ratio('ours', 'reference'))}{TIMES}",
        )
    )
    for key, name in (
        ("stock-exit", "AsyncRedisSaver"),
        ("shallow-exit", "AsyncShallowRedisSaver"),
    ):
        section.targets.append(
            Target(
                "turn",
                f'{title}: {name} ÷ ours, both durability="exit"',
                ratio(key, "ours"),
                MIN_AHEAD,
                ">=",
                TIMES,
                "at its default durability: "
                f"{fmt(ratio(key.removesuffix('-exit'), 'ours'))}{TIMES}",
            )
        )
