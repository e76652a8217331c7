"""HTTP load generator for `/chat`, run in its own process: `python -m bench.loadgen ...`.

Closed loop: each simulated user sends the scripted conversation one message at a time,
the next as soon as the previous answer arrived, until it sent `--turns` messages or
`--duration` seconds passed. Talks to 127.0.0.1 only. Prints one JSON object (or writes it
to `--out`): successful turns, errors, turns per second, latency percentiles as the client
saw them and as the server reported them (its `Server-Timing` header).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.lite import SCRIPT, percentile
from server.timing import parse as parse_server_timing

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


async def _user(
    client: httpx.AsyncClient,
    user_id: str,
    turns: int,
    deadline: float,
    latencies: list[float],
    server_ms: list[float],
    statuses: Counter[str],
    errors: list[str],
) -> None:
    for turn in range(turns):
        if time.monotonic() >= deadline:
            return
        body = {"message": SCRIPT[turn % len(SCRIPT)], "userId": user_id}
        started = time.perf_counter()
        try:
            response = await client.post("/chat", json=body)
            elapsed = time.perf_counter() - started
            statuses[str(response.status_code)] += 1
            if response.status_code != 200 or "response" not in response.json():
                if len(errors) < 10:
                    errors.append(f"{user_id} turn {turn}: {response.status_code} {response.text}")
                continue
            latencies.append(elapsed)
            reported = parse_server_timing(response.headers.get("server-timing"))
            if reported is not None:
                server_ms.append(reported)
        except (httpx.HTTPError, ValueError) as error:
            statuses[type(error).__name__] += 1
            if len(errors) < 10:
                errors.append(f"{user_id} turn {turn}: {type(error).__name__}: {error}")


async def run(url: str, users: int, turns: int, duration: float, prefix: str) -> dict[str, Any]:
    host = urlsplit(url).hostname
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to load {url}: 127.0.0.1 only")
    latencies: list[float] = []
    server_ms: list[float] = []
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    # Idle connections are dropped after 2 s, before the server's 5 s keep-alive timeout
    # closes them: with httpx's default (5 s, the same) a request sent on a connection the
    # server is closing at that moment fails with ReadError (a client-side race, seen once at
    # the tail of a phase, when fewer users are left and connections sit idle in the pool).
    limits = httpx.Limits(
        max_connections=users, max_keepalive_connections=users, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        deadline = time.monotonic() + duration
        await asyncio.gather(
            *(
                _user(
                    client, f"{prefix}-{i}", turns, deadline, latencies, server_ms, statuses, errors
                )
                for i in range(users)
            )
        )
        elapsed = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return {
        "url": url,
        "users": users,
        "turns_per_user": turns,
        "duration_cap_s": duration,
        "elapsed_s": elapsed,
        "turns_ok": len(latencies),
        "errors": sum(statuses.values()) - len(latencies),
        "statuses": dict(statuses),
        "error_samples": errors,
        "turns_per_s": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "latency_ms": _summary(ms),
        "server_ms": _summary(server_ms),
        "server_ms_all": server_ms,
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
