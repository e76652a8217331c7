"""Target 4, HTTP load: `/chat` on the real server, on Redis, on a Redis Cluster, in memory.

Three `weather-agent serve --workers N` processes (offline model, simulated weather, JSON
logs, no rate limit, every other setting at its default): one on an embedded Redis, one on
an embedded Redis Cluster (3 primaries, a replica each), and one with REDIS_URL pointing at
a closed port, so it runs degraded on in-memory storage (the same code, the same process
layout). The load comes from `python -m bench.loadgen` in a separate process: closed-loop
users sending the scripted conversation, bounded in turns and time, on 127.0.0.1. The
servers take turns under load, rotating which goes first, and the throughput ratios are
taken within each round.

Server time of a lone user's turn: one user, one message at a time, on the memory and the
Redis server, their turns interleaved (turn k on each, then turn k + 1); the time is what
each response's `Server-Timing` header reports (`server.timing`: from the request reaching
the app to its response starting, so routing, validation, the session and the agent turn,
the JSON answer), next to the round trip the client measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen
from bench.common import (
    RESULTS_DIR,
    ROOT,
    TIMES,
    Section,
    Target,
    fmt,
    rotated,
)
from bench.lite import median, percentile
from session_policy.redis_server import free_port

MIN_THROUGHPUT_RATIO = 0.80  # Redis server ÷ memory server, and cluster ÷ one Redis
MAX_LONE_RATIO = 1.25  # a lone user's server time p50: Redis server / memory server


@dataclass(frozen=True)
class HttpSizes:
    users: int = 50
    turns: int = 20
    rounds: int = 3
    duration_s: float = 120.0
    lone_turns: int = 60
    warmup_turns: int = 5
    workers: int = os.cpu_count() or 2


class Server:
    """`python -m server.cli serve` in its own process group, logs to a file."""

    def __init__(self, kind: str, redis_url: str, workers: int, log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.workers = workers
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "MODEL": "offline",
            "WEATHER_PROVIDER": "simulated",
            "OPENAI_API_KEY": "",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            # The lone user sends more than the default 60 messages a minute.
            "RATE_LIMIT_PER_MINUTE": "0",
        }
        for name in ("SESSION_PROFILE", "OPENAI_BASE_URL"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers share its process group
            )

    def wait_ready(self, timeout_s: float = 90.0) -> dict[str, Any]:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited: {self.tail()}")
            try:
                status = httpx.get(f"{self.url}/system/status", timeout=2)
                if status.status_code == 200:
                    data: dict[str, Any] = status.json()
                    return data
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} server did not start: {self.tail()}")

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def start_servers(
    redis_url: str, cluster_url: str, sizes: HttpSizes, log_dir: Path
) -> dict[str, Server]:
    """The three servers, starting (not waited for): on one Redis, on the Redis Cluster
    (`cluster_url`) and on memory."""
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    urls = {"redis": redis_url, "cluster": cluster_url, "memory": closed}
    started = {
        kind: Server(kind, url, sizes.workers, log_dir / f"http-{kind}.log")
        for kind, url in urls.items()
    }
    try:
        for server in started.values():  # start both, then wait: imports overlap
            server.start()
    except BaseException:
        for server in started.values():
            server.stop()
        raise
    return started


@contextlib.contextmanager
def servers(started: dict[str, Server]) -> Iterator[dict[str, Server]]:
    """The started servers once they answer; stopped on the way out."""
    try:
        for server in started.values():
            status = server.wait_ready()
            expected = "memory" if server.kind == "memory" else "redis"
            if status.get("storageMode") != expected:
                raise RuntimeError(f"{server.kind} server runs on {status.get('storageMode')}")
        yield started
    finally:
        for server in started.values():
            server.stop()


def load(server: Server, users: int, turns: int, duration: float, prefix: str) -> dict[str, Any]:
    """One run of the load generator in its own process."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--url",
            server.url,
            "--users",
            str(users),
            "--turns",
            str(turns),
            "--duration",
            str(duration),
            "--prefix",
            prefix,
            "--out",
            str(out),
        ]
        subprocess.run(command, cwd=ROOT, check=True, timeout=duration + 120)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def run(
    redis_url: str,
    cluster_url: str,
    sizes: HttpSizes,
    log_dir: Path = RESULTS_DIR,
    starting: dict[str, Server] | None = None,
) -> Section:
    """The HTTP section; `starting`: servers already started (`start_servers`)."""
    started = time.perf_counter()
    section = Section(
        "http",
        f"4. HTTP /chat load ({sizes.users} users, {sizes.workers} workers)",
        ["server", "phase", "turns", "turns/s", "p50 ms", "p99 ms", "errors"],
    )
    section.notes.append(
        f"{sizes.users} closed-loop users {TIMES} up to {sizes.turns} messages per phase "
        f"(cap {fmt(sizes.duration_s, 0)} s), {sizes.rounds} phases per server, alternating; "
        f"load generator: python -m bench.loadgen (own process); server logs in {log_dir}; "
        f"servers: weather-agent serve --workers {sizes.workers}"
    )
    kinds = ["memory", "redis", "cluster"]
    phases: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    lone: dict[str, dict[str, Any]] = {}
    with servers(starting or start_servers(redis_url, cluster_url, sizes, log_dir)) as running:
        for kind in kinds if sizes.warmup_turns else []:  # warm-up: first sessions, pools
            load(running[kind], min(sizes.users, 10), sizes.warmup_turns, 60, f"warm-{kind}")
        for round_ in range(sizes.rounds):
            for kind in rotated(kinds, round_):
                result = load(
                    running[kind], sizes.users, sizes.turns, sizes.duration_s, f"r{round_}-{kind}"
                )
                result.pop("server_ms_all")  # the summary is enough under load
                phases[kind].append(result)
        urls = {kind: running[kind].url for kind in ("memory", "redis")}
        alone = asyncio.run(loadgen.run_alternating(urls, sizes.lone_turns, "lone"))
        for kind, client in alone.items():
            lone[kind] = {"client": client, "server_ms": client.pop("server_ms_all")}

    for kind in kinds:
        for i, result in enumerate(phases[kind]):
            section.rows.append(_row(kind, f"load {i + 1}", result))
        if kind not in lone:
            continue
        client = lone[kind]["client"]
        section.rows.append(_row(kind, "lone user (client)", client))
        server_ms: list[float] = lone[kind]["server_ms"]
        section.rows.append(
            [
                kind,
                "lone user (server time)",
                str(len(server_ms)),
                "-",
                fmt(percentile(server_ms, 50)),
                fmt(percentile(server_ms, 99)),
                "-",
            ]
        )
    ratios = _ratios(phases["redis"], phases["memory"])
    cluster_ratios = _ratios(phases["cluster"], phases["redis"])
    errors = {kind: sum(int(p["errors"]) for p in phases[kind]) for kind in phases}
    for kind, measured in lone.items():
        errors[kind] += int(measured["client"]["errors"])
    lone_ms: list[float] = lone["redis"]["server_ms"]
    section.figures = {
        "sizes": sizes.__dict__,
        "phases": phases,
        "lone": lone,
        "throughput_ratios": ratios,
        "cluster_throughput_ratios": cluster_ratios,
        "errors": errors,
    }
    redis_tps = median(p["turns_per_s"] for p in phases["redis"])
    memory_tps = median(p["turns_per_s"] for p in phases["memory"])
    cluster_tps = median(p["turns_per_s"] for p in phases["cluster"])
    section.targets += [
        Target(
            "http",
            "Redis server ÷ memory server, turns/s",
            median(ratios),
            MIN_THROUGHPUT_RATIO,
            ">=",
            TIMES,
            f"{fmt(redis_tps, 1)} vs {fmt(memory_tps, 1)} turns/s (medians; per phase: "
            + ", ".join(fmt(r) for r in ratios)
            + ")",
        ),
        Target(
            "http",
            "errors under load (Redis server)",
            errors["redis"],
            0,
            "<=",
            "",
            f"memory server: {errors['memory']}; samples: {_samples(phases['redis'])}",
        ),
        Target(
            "http",
            "lone user, server time per turn, p50: Redis server ÷ memory server",
            percentile(lone_ms, 50) / percentile(lone["memory"]["server_ms"], 50),
            MAX_LONE_RATIO,
            "<=",
            TIMES,
            f"{fmt(percentile(lone_ms, 50))} vs "
            f"{fmt(percentile(lone['memory']['server_ms'], 50))} ms over {len(lone_ms)} turns; "
            f"Redis p90 {fmt(percentile(lone_ms, 90))}, p99 {fmt(percentile(lone_ms, 99))} ms; "
            f"client-side p50 {fmt(lone['redis']['client']['latency_ms']['p50'])} ms",
        ),
    ]
    section.targets += [
        Target(
            "http",
            "Redis Cluster server ÷ one-Redis server, turns/s",
            median(cluster_ratios),
            MIN_THROUGHPUT_RATIO,
            ">=",
            TIMES,
            f"{fmt(cluster_tps, 1)} vs {fmt(redis_tps, 1)} turns/s (medians; per phase: "
            + ", ".join(fmt(r) for r in cluster_ratios)
            + "); 3 primaries + 3 replicas",
        ),
        Target(
            "http",
            "errors under load (Redis Cluster server)",
            errors["cluster"],
            0,
            "<=",
            "",
            f"samples: {_samples(phases['cluster'])}",
        ),
    ]
    section.seconds = time.perf_counter() - started
    return section


def _ratios(numerators: list[dict[str, Any]], denominators: list[dict[str, Any]]) -> list[float]:
    """Throughput ratios phase by phase (the phases of one round ran back to back)."""
    return [
        n["turns_per_s"] / d["turns_per_s"]
        for n, d in zip(numerators, denominators, strict=True)
        if d["turns_per_s"] > 0
    ]


def _samples(phases: list[dict[str, Any]]) -> str:
    """The first errors of each phase, for a target's detail."""
    return "; ".join(s for p in phases for s in p.get("error_samples", [])[:2])[:300]


def _row(kind: str, phase: str, result: dict[str, Any]) -> list[str]:
    return [
        kind,
        phase,
        str(result["turns_ok"]),
        fmt(result["turns_per_s"], 1),
        fmt(result["latency_ms"]["p50"]),
        fmt(result["latency_ms"]["p99"]),
        str(result["errors"]),
    ]
