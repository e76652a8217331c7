"""Shared tools of the reliability tests: real server processes, HTTP turns, polling, Redis.

Everything runs on 127.0.0.1 against `weather-agent serve` processes (`ServerProcess`) and
embedded Redis servers; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.server_process import ServerProcess

JSON = dict[str, Any]

# Generous per-request timeout: the test machine may be shared and busy.
HTTP_TIMEOUT = 60.0


def start_servers(redis_url: str, count: int, **env: str) -> list[ServerProcess]:
    """`count` server processes on one Redis, started in parallel (start-up is the slow part)."""
    servers = [ServerProcess(redis_url, **env) for _ in range(count)]
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(server.start) for server in servers]
    failures = [f.exception() for f in futures if f.exception() is not None]
    if failures:
        for server in servers:
            server.stop()
        raise RuntimeError(f"{len(failures)} of {count} servers did not start") from failures[0]
    return servers


@contextmanager
def running_servers(redis_url: str, count: int, **env: str) -> Iterator[list[ServerProcess]]:
    servers = start_servers(redis_url, count, **env)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def kill_hard(server: ServerProcess) -> int:
    """SIGKILL the server process (no shutdown code runs); returns its pid."""
    process = server.process
    assert process is not None, "the server is not running"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL
    server.process = None
    return process.pid


def client(base_url: str, connections: int = 32) -> httpx.AsyncClient:
    # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout closes
    # them: with httpx's default (5 s, the same) a request sent on a connection the server is
    # closing at that moment fails with ReadError, a client-side race, not a server error.
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0
    )
    return httpx.AsyncClient(base_url=base_url, timeout=HTTP_TIMEOUT, limits=limits)


async def chat(http: httpx.AsyncClient, user: str, message: str) -> JSON:
    """One conversation over `POST /chat`; any status but 200 fails the test."""
    response = await http.post("/chat", json={"userId": user, "message": message})
    assert response.status_code == 200, f"{user}: {response.status_code} {response.text}"
    body: JSON = response.json()
    return body


async def get_json(http: httpx.AsyncClient, path: str) -> JSON:
    response = await http.get(path)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    body: JSON = response.json()
    return body


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    interval_s: float = 0.2,
) -> float:
    """Poll `condition` until it holds; returns the seconds it took, fails after `timeout_s`."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(interval_s)
    return time.monotonic() - started


async def ended_by_this_process(http: httpx.AsyncClient) -> dict[str, int]:
    """This process's `weather_agent_sessions_ended` counter, by end reason (`/metrics`)."""
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name != "weather_agent_sessions_ended":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                counts[sample.labels["reason"]] = int(sample.value)
    return counts


def gather_limited(limit: int, coroutines: list[Awaitable[Any]]) -> Awaitable[list[Any]]:
    """Run `coroutines` with at most `limit` of them in flight."""
    gate = asyncio.Semaphore(limit)

    async def limited(coroutine: Awaitable[Any]) -> Any:
        async with gate:
            return await coroutine

    return asyncio.gather(*(limited(c) for c in coroutines))
