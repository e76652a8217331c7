"""HTTP load generator for `/chat`, run in its own process: `python -m bench.loadgen ...`.

Closed loop: each simulated user sends the scripted conversation one message at a time,
the next as soon as the previous answer arrived, until it sent `--turns` messages or
`--duration` seconds passed. Talks to 127.0.0.1 only. Prints one JSON object (or writes it
to `--out`): successful turns, errors, turns per second, latency percentiles as the client
saw them and as the server reported them (its `Server-Timing` header).

`run_alternating` is the lone user of the bench: one user per server, one message at a
time, the servers' turns interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.lite import SCRIPT, percentile
from server.timing import parse as parse_server_timing

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class _Tally:
    """What one server answered: client latencies, its reported times, statuses."""

    latencies: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # the first 10, for the report

    def failed(self, what: str) -> None:
        if len(self.errors) < 10:
            self.errors.append(what)


async def _send(client: httpx.AsyncClient, user_id: str, turn: int, tally: _Tally) -> None:
    """The user's message number `turn` of the script, tallied."""
    body = {"message": SCRIPT[turn % len(SCRIPT)], "userId": user_id}
    started = time.perf_counter()
    try:
        response = await client.post("/chat", json=body)
        elapsed = time.perf_counter() - started
        tally.statuses[str(response.status_code)] += 1
        if response.status_code != 200 or "response" not in response.json():
            tally.failed(f"{user_id} turn {turn}: {response.status_code} {response.text}")
            return
        tally.latencies.append(elapsed)
        reported = parse_server_timing(response.headers.get("server-timing"))
        if reported is not None:
            tally.server_ms.append(reported)
    except (httpx.HTTPError, ValueError) as error:
        tally.statuses[type(error).__name__] += 1
        tally.failed(f"{user_id} turn {turn}: {type(error).__name__}: {error}")


async def _user(
    client: httpx.AsyncClient, user_id: str, turns: int, deadline: float, tally: _Tally
) -> None:
    for turn in range(turns):
        if time.monotonic() >= deadline:
            return
        await _send(client, user_id, turn, tally)


def _local(url: str) -> str:
    if urlsplit(url).hostname not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to load {url}: 127.0.0.1 only")
    return url


def _client(url: str, users: int) -> httpx.AsyncClient:
    # Idle connections are dropped after 2 s, before the server's 5 s keep-alive timeout
    # closes them: with httpx's default (5 s, the same) a request sent on a connection the
    # server is closing at that moment fails with ReadError (a client-side race, seen once at
    # the tail of a phase, when fewer users are left and connections sit idle in the pool).
    limits = httpx.Limits(
        max_connections=users, max_keepalive_connections=users, keepalive_expiry=2.0
    )
    return httpx.AsyncClient(base_url=_local(url), timeout=60, limits=limits)


async def run(url: str, users: int, turns: int, duration: float, prefix: str) -> dict[str, Any]:
    tally = _Tally()
    async with _client(url, users) as client:
        started = time.perf_counter()
        deadline = time.monotonic() + duration
        await asyncio.gather(
            *(_user(client, f"{prefix}-{i}", turns, deadline, tally) for i in range(users))
        )
        elapsed = time.perf_counter() - started
    return _result(url, users, turns, duration, elapsed, tally)


async def run_alternating(urls: dict[str, str], turns: int, prefix: str) -> dict[str, Any]:
    """A lone user on each server, their turns interleaved: turn k on every server (which
    goes first rotating), then turn k + 1, so a noisy machine shifts them all alike."""
    tallies = {name: _Tally() for name in urls}
    clients = {name: _client(url, 1) for name, url in urls.items()}
    elapsed = dict.fromkeys(urls, 0.0)
    try:
        names = list(urls)
        for turn in range(turns):
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                await _send(clients[name], f"{prefix}-{name}", turn, tallies[name])
                elapsed[name] += time.perf_counter() - started
    finally:
        for client in clients.values():
            await client.aclose()
    return {
        name: _result(url, 1, turns, None, elapsed[name], tallies[name])
        for name, url in urls.items()
    }


def _result(
    url: str, users: int, turns: int, duration: float | None, elapsed: float, tally: _Tally
) -> dict[str, Any]:
    ms = [x * 1000 for x in tally.latencies]
    return {
        "url": url,
        "users": users,
        "turns_per_user": turns,
        "duration_cap_s": duration,
        "elapsed_s": elapsed,
        "turns_ok": len(ms),
        "errors": sum(tally.statuses.values()) - len(ms),
        "statuses": dict(tally.statuses),
        "error_samples": tally.errors,
        "turns_per_s": len(ms) / elapsed if elapsed > 0 else 0.0,
        "latency_ms": _summary(ms),
        "server_ms": _summary(tally.server_ms),
        "server_ms_all": tally.server_ms,
    }


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
        "mean": sum(ms) / len(ms) if ms else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=50, help="concurrent users")
    parser.add_argument("--turns", type=int, default=20, help="messages per user at most")
    parser.add_argument("--duration", type=float, default=120, help="seconds at most")
    parser.add_argument("--prefix", default="load", help="user id prefix")
    parser.add_argument("--out", type=Path, help="write the JSON here (default: stdout)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.users, args.turns, args.duration, args.prefix))
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
