"""`python -m bench`: run the four benchmarks, print the tables, write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from rich.console import Console

from bench import cleanup, httpload, memory, turn
from bench.common import RESULTS_DIR, Section, environment, write_json
from bench.report import render
from session_policy.embedded_cluster import EmbeddedCluster
from session_policy.redis_server import EmbeddedRedis

SECTIONS = ("turn", "bytes", "cleanup", "http")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the issue's four targets: turn overhead, bytes per "
        "session, cleanup, HTTP load. Each section starts its own embedded Redis.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        help="where to write the figures (default: bench/results/latest.json)",
    )
    group = parser.add_argument_group("turn overhead")
    group.add_argument("--turn-threads", type=int, help="threads per configuration (5)")
    group.add_argument("--turn-turns", type=int, help="turns per thread (20)")
    group.add_argument("--turn-rounds", type=int, help="measured rounds (5)")
    group.add_argument(
        "--turn-levels", default=",".join(turn.LEVELS), help="echo,agent,manager (all)"
    )
    group = parser.add_argument_group("bytes per session")
    group.add_argument("--bytes-points", help="turn counts to measure at (10,20,40)")
    group.add_argument("--bytes-sessions", type=int, help="sessions measured (3)")
    group.add_argument("--bytes-no-stock", action="store_true", help="skip the stock savers' rows")
    group = parser.add_argument_group("cleanup")
    group.add_argument("--cleanup-sessions", type=int, help="expired sessions (10000)")
    group = parser.add_argument_group("HTTP load")
    group.add_argument("--http-users", type=int, help="concurrent users (50)")
    group.add_argument("--http-turns", type=int, help="messages per user and phase (20)")
    group.add_argument("--http-rounds", type=int, help="phases per server (3)")
    group.add_argument("--http-lone-turns", type=int, help="turns of the lone user (60)")
    group.add_argument("--http-workers", type=int, help="server workers (as many as cores)")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; use {SECTIONS}")
    return args


def _pick(value: int | None, full: int, quick: int, is_quick: bool) -> int:
    if value is not None:
        return value
    return quick if is_quick else full


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    q = bool(args.quick)
    points = (
        tuple(int(x) for x in args.bytes_points.split(","))
        if args.bytes_points
        else ((2, 4) if q else (10, 20, 40))
    )
    return {
        "turn": turn.TurnSizes(
            threads=_pick(args.turn_threads, 5, 1, q),
            turns=_pick(args.turn_turns, 20, 2, q),
            rounds=_pick(args.turn_rounds, 5, 1, q),
            warmup_rounds=0 if q else 1,
        ),
        "bytes": memory.BytesSizes(
            points=points,
            sessions=_pick(args.bytes_sessions, 3, 1, q),
            settle_s=0.3 if q else 1.0,
        ),
        "cleanup": cleanup.CleanupSizes(
            sessions=_pick(args.cleanup_sessions, 10_000, 50, q),
            retention_s=1 if q else 5,
            settle_s=0.3 if q else 3.0,
        ),
        "http": httpload.HttpSizes(
            users=_pick(args.http_users, 50, 3, q),
            turns=_pick(args.http_turns, 20, 2, q),
            rounds=_pick(args.http_rounds, 3, 1, q),
            lone_turns=_pick(args.http_lone_turns, 60, 3, q),
            warmup_turns=0 if q else 5,
            workers=args.http_workers or (1 if q else os.cpu_count() or 2),
        ),
    }


async def _run_async(name: str, size: Any, args: argparse.Namespace) -> Section:
    with EmbeddedRedis() as server:  # a fresh Redis per section: no section sees another's
        if name == "turn":
            return await turn.run(server.url, size, args.turn_levels.split(","))
        if name == "bytes":
            return await memory.run(server.url, size, include_stock=not args.bytes_no_stock)
        section = await cleanup.run(server.url, size)
    with EmbeddedCluster() as cluster:  # the same sweep on a Redis Cluster
        await cleanup.run_on_cluster(cluster.url, size, section)
    return section


def run_section(
    name: str, size: Any, args: argparse.Namespace, early: _EarlyHttp | None = None
) -> Section:
    if name == "http":
        if early is not None:
            return httpload.run(
                early.redis.url, early.cluster.url, size, args.out.parent, early.servers
            )
        with EmbeddedRedis() as server, EmbeddedCluster() as cluster:
            return httpload.run(server.url, cluster.url, size, args.out.parent)
    return asyncio.run(_run_async(name, size, args))


class _EarlyHttp:
    """--quick: the HTTP section's Redis and servers, started first so that their start-up
    overlaps the other sections (which then run on a busier machine: fine for a smoke run,
    not for figures, so the full run starts them in their turn)."""

    def __init__(self, size: httpload.HttpSizes, log_dir: Path) -> None:
        self.redis = EmbeddedRedis().start()
        self.cluster = EmbeddedCluster()
        try:
            self.cluster.start()
            self.servers = httpload.start_servers(self.redis.url, self.cluster.url, size, log_dir)
        except BaseException:
            self.redis.close()
            self.cluster.close()
            raise

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.redis.close()
        self.cluster.close()


async def _environment() -> dict[str, Any]:
    with EmbeddedRedis() as server:
        client = aioredis.Redis.from_url(server.url)
        try:
            return await environment(client)
        finally:
            await client.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 160))
    # the service logs at INFO through the root logger; the report is what matters here
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    wanted = [s for s in SECTIONS if s in args.only.split(",")]
    all_sizes = sizes(args)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    early = (
        _EarlyHttp(all_sizes["http"], args.out.parent) if args.quick and "http" in wanted else None
    )
    sections: list[Section] = []
    try:
        env = asyncio.run(_environment())
        for name in wanted:
            console.print(f"[bold]running {name}[/bold] ({all_sizes[name]})")
            sections.append(run_section(name, all_sizes[name], args, early))
    finally:
        if early is not None:
            early.close()
    env["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    targets = [t for s in sections for t in s.targets]
    data = {
        "started_at": started_at.isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "quick": bool(args.quick),
        "command": ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])],
        "environment": env,
        "sizes": {name: all_sizes[name].__dict__ for name in wanted},
        "sections": {s.name: s.to_json() for s in sections},
        "targets": [t.to_json() for t in targets],
        "passed": sum(t.passed for t in targets),
        "missed": sum(not t.passed for t in targets),
    }
    write_json(args.out, data)
    render(console, env, sections)
    console.print(f"\nfigures written to {args.out}")
    return 0
