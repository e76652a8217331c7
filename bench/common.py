"""Shared pieces of the benchmark: targets, statistics, Redis helpers, the environment."""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis

from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather
from agent.weather.gazetteer import gazetteer
from bench.lite import SCRIPT
from server.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"

Op = Literal["<=", "<", ">="]
TIMES = "\u00d7"  # the multiplication sign (ruff flags it in literals as ambiguous)
T = TypeVar("T")


@dataclass
class Target:
    """One target of the issue, with what was measured against it."""

    section: str
    name: str
    measured: float
    limit: float
    op: Op
    unit: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        if self.op == "<=":
            return self.measured <= self.limit
        if self.op == "<":
            return self.measured < self.limit
        return self.measured >= self.limit

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Section:
    """What one benchmark section produced: a table, its targets, raw figures."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ablations: list[str] = field(default_factory=list)  # what a mechanism left out would buy
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "targets": [t.to_json() for t in self.targets],
            "figures": self.figures,
            "notes": self.notes,
            "ablations": self.ablations,
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- statistics


def fmt(value: float, digits: int = 2) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def fmt_bytes(value: float) -> str:
    if value != value:
        return "-"
    if abs(value) >= 1024 * 1024:
        return f"{value / 1024 / 1024:,.2f} MiB"
    if abs(value) >= 1024:
        return f"{value / 1024:,.1f} KiB"
    return f"{value:,.0f} B"


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """`items` rotated by `shift`: each round starts with another configuration."""
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


async def timed(block: Callable[[], Awaitable[Any]]) -> float:
    """Seconds `block` took, after a full garbage collection (not inside the timing)."""
    gc.collect()
    started = time.perf_counter()
    await block()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the service


def bench_settings(redis_url: str | None, **overrides: Any) -> Settings:
    """The server's settings (defaults), offline model, simulated weather, given Redis."""
    values: dict[str, Any] = {
        "model": "offline",
        "weather_provider": "simulated",
        "openai_api_key": None,
        "openai_base_url": None,
        "redis_url": redis_url,
        "session_profile": None,
        "session_duration": 1800,
        "max_conversations_per_session": 20,
        "inactivity_timeout": 900,
        "cleanup_interval": 300_000,
        "session_history_retention": 86_400,
        "user_memory_ttl": 3600,
        "end_sessions_on_shutdown": False,
    }
    values.update(overrides)
    return load_settings(**values)


def offline_parts() -> tuple[OfflineChatModel, SimulatedWeather]:
    """The offline model and simulated weather, with the gazetteer built (as at start-up)."""
    gazetteer()  # ~4 s the first time: the server builds it before serving, so do we
    return OfflineChatModel(), SimulatedWeather()


def message(turn: int) -> str:
    return SCRIPT[turn % len(SCRIPT)]


# --------------------------------------------------------------------------- Redis


async def used_memory(client: aioredis.Redis) -> dict[str, int]:
    info = await client.info("memory")
    return {
        "used_memory": int(info["used_memory"]),
        "used_memory_dataset": int(info.get("used_memory_dataset", 0)),
        "mem_clients_normal": int(info.get("mem_clients_normal", 0)),
        "used_memory_scripts": int(info.get("used_memory_scripts", 0)),
        "used_memory_vm_eval": int(info.get("used_memory_vm_eval", 0)),
    }


async def settled_used_memory(
    client: aioredis.Redis, *, seconds: float = 3.0, interval: float = 0.25
) -> dict[str, int]:
    """`used_memory` once it stops moving (Redis shrinks its tables in the background)."""
    deadline = time.monotonic() + seconds
    last = await used_memory(client)
    stable = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(interval)
        now = await used_memory(client)
        stable = stable + 1 if now["used_memory"] == last["used_memory"] else 0
        last = now
        if stable >= 3:
            break
    return last


async def memory_usage(client: aioredis.Redis, keys: Iterable[str | bytes]) -> int:
    """Sum of `MEMORY USAGE key SAMPLES 0` (every element counted) over existing keys."""
    total = 0
    async with client.pipeline(transaction=False) as pipe:
        names = list(keys)
        for key in names:
            pipe.memory_usage(key, samples=0)
        for reply in await pipe.execute():
            total += int(reply or 0)
    return total


async def scan_keys(client: aioredis.Redis, pattern: str) -> list[bytes]:
    found: dict[bytes, None] = {}
    async for key in client.scan_iter(match=pattern, count=1000):
        found[key if isinstance(key, bytes) else str(key).encode()] = None
    return list(found)


def glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


# --------------------------------------------------------------------------- environment


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


async def environment(client: aioredis.Redis | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            name: _version(name)
            for name in (
                "langgraph",
                "langgraph-checkpoint",
                "langgraph-checkpoint-redis",
                "langchain-core",
                "redis",
                "hiredis",
                "httpx",
                "uvicorn",
                "fastapi",
                "langserve",
            )
        },
        "git_commit": _git_commit(),
    }
    if client is not None:
        info = await client.info("server")
        env["redis_server"] = {
            "version": info.get("redis_version"),
            "mode": info.get("redis_mode"),
            "allocator": (await client.info("memory")).get("mem_allocator"),
        }
        modules = await client.module_list()
        env["redis_server"]["modules"] = sorted(_module_names(modules))
    return env


def _module_names(reply: Any) -> list[str]:
    names = []
    for module in reply or []:
        if isinstance(module, dict):
            raw = module.get(b"name", module.get("name"))
        else:  # RESP2 flat list: name, <name>, ver, <ver>, ...
            items = list(module)
            raw = items[1] if len(items) > 1 else None
        if raw is not None:
            names.append(raw.decode() if isinstance(raw, bytes) else str(raw))
    return names


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
