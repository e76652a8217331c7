"""Two server processes on one Redis, users' messages alternating between them.

Each user has exactly one session whichever process answers, the counts are exact, and with
short limits both processes' cleanup loops race over the same deadline index: each expired
session must still be ended exactly once (one record, one count in the statistics, one
`sessions ended` in the sum of both processes' metrics).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest

from session_policy.redis_server import EmbeddedRedis
from tests.reliability.helpers import (
    JSON,
    chat,
    client,
    ended_by_this_process,
    gather_limited,
    get_json,
    running_servers,
    wait_until,
)
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

USERS = 200
MESSAGES = ["Weather in Rome?", "and tomorrow?", "Weather in Oslo?"]
CONCURRENCY = 20
LIMITS = {
    "RATE_LIMIT_PER_MINUTE": "0",
    "INACTIVITY_TIMEOUT": "2",
    "CLEANUP_INTERVAL": "300",
    "MAX_CONVERSATIONS_PER_SESSION": "10",
}


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="module")
def two_servers(shared_redis: EmbeddedRedis) -> Iterator[list[ServerProcess]]:
    with running_servers(shared_redis.url, 2, **LIMITS) as servers:
        yield servers


def stamp(answer: JSON) -> float:
    return datetime.fromisoformat(answer["timestamp"].replace("Z", "+00:00")).timestamp()


async def converse(
    https: list[httpx.AsyncClient], index: int, latencies: list[float]
) -> list[JSON]:
    """One user's messages, message k on process (index + k) % 2; then a look from the other."""
    user = f"mp-{index:03d}"
    answers = []
    for k, message in enumerate(MESSAGES):
        sent = time.monotonic()
        answers.append(await chat(https[(index + k) % 2], user, message))
        latencies.append(time.monotonic() - sent)
    listing = await get_json(https[(index + len(MESSAGES)) % 2], f"/sessions/{user}")
    assert listing["activeSessions"] == 1, listing
    assert listing["sessions"][0]["sessionId"] == answers[0]["sessionId"]
    assert listing["sessions"][0]["conversationCount"] == len(MESSAGES)
    return answers


async def check_ended_once(https: list[httpx.AsyncClient], index: int, session_id: str) -> None:
    user = f"mp-{index:03d}"
    listing = await get_json(https[index % 2], f"/sessions/{user}")
    assert listing["activeSessions"] == 0, listing
    history = await get_json(https[(index + 1) % 2], f"/sessions/{user}/history")
    records = history["endedSessions"]
    assert len(records) == 1, records
    assert records[0]["sessionId"] == session_id
    assert records[0]["conversationCount"] == len(MESSAGES)
    assert records[0]["endReason"] == "inactivity"


@dataclass
class Outcome:
    """What two processes made of the users' conversations, once cleanup ended them all."""

    results: list[list[JSON]]  # each user's answers
    chat_s: float
    latencies: list[float]
    waited_s: float  # from the last answer until no session was active
    status: list[JSON]  # each process's /system/status
    inactivity: list[int]  # sessions each process ended by inactivity
    memory: JSON  # /system/memory


async def converse_then_expire(servers: list[ServerProcess]) -> Outcome:
    """Every user converses across both processes (one session each, exact counts), then
    waits for cleanup: each user's session is ended once, by inactivity."""
    https = [client(server.url, CONCURRENCY + 4) for server in servers]
    try:
        # Each process answers once first (its first turn builds the offline gazetteer), and
        # those warm-up sessions are ended by hand so they do not count below.
        for n, http in enumerate(https):
            await chat(http, f"mp-warm-{n}", "Weather in Rome?")
            await http.post(f"/sessions/mp-warm-{n}/end")

        started = time.monotonic()
        latencies: list[float] = []
        results: list[list[JSON]] = await gather_limited(
            CONCURRENCY, [converse(https, i, latencies) for i in range(USERS)]
        )
        chat_s = time.monotonic() - started
        for answers in results:
            assert {a["storage"] for a in answers} == {"redis"}
            assert len({a["sessionId"] for a in answers}) == 1  # one session, both processes
            assert [a["conversationCount"] for a in answers] == [1, 2, 3]
            assert answers[1]["response"].startswith("Tomorrow in Rome")
        assert len({answers[0]["sessionId"] for answers in results}) == USERS

        async def none_active() -> bool:
            status = await get_json(https[0], "/system/status")
            active: int = status["sessions"]["activeSessions"]
            return active == 0

        waited_s = await wait_until(none_active, 30, "every session ended by cleanup", 0.25)
        await gather_limited(
            CONCURRENCY,
            [check_ended_once(https, i, results[i][0]["sessionId"]) for i in range(USERS)],
        )
        status = [await get_json(http, "/system/status") for http in https]
        per_process = [await ended_by_this_process(http) for http in https]
        memory = await get_json(https[1], "/system/memory")
    finally:
        for http in https:
            await http.aclose()

    stats = status[0]["sessions"]
    inactivity = [counts.get("inactivity", 0) for counts in per_process]
    assert {s["status"] for s in status} == {"ok"}
    assert status[1]["sessions"]["endedByReason"] == stats["endedByReason"]  # shared in Redis
    assert stats["endedByReason"]["inactivity"] == USERS
    assert stats["endedByReason"]["manual"] == 2  # the warm-up sessions
    assert sum(inactivity) == USERS  # no session ended twice, whichever process swept
    assert stats["activeSessions"] == 0
    return Outcome(results, chat_s, latencies, waited_s, status, inactivity, memory)


async def test_two_processes_one_session_per_user_and_exactly_once_cleanup(
    two_servers: list[ServerProcess],
) -> None:
    outcome = await converse_then_expire(two_servers)
    gaps = [stamp(a[k + 1]) - stamp(a[k]) for a in outcome.results for k in range(len(a) - 1)]
    stats = outcome.status[0]["sessions"]
    print(
        f"\n[multi-process] {USERS} users x {len(MESSAGES)} messages over 2 processes in "
        f"{outcome.chat_s:.1f} s ({USERS * len(MESSAGES) / outcome.chat_s:.1f} turns/s, "
        f"concurrency {CONCURRENCY}); turn latency median "
        f"{statistics.median(outcome.latencies):.2f} s, max {max(outcome.latencies):.2f} s; "
        f"largest gap between a user's answers {max(gaps):.2f} s (INACTIVITY_TIMEOUT 2 s); "
        f"all ended {outcome.waited_s:.1f} s later; ended by inactivity: stats "
        f"{stats['endedByReason']['inactivity']}, per process {outcome.inactivity} (sum "
        f"{sum(outcome.inactivity)}); cleanup runs {stats['cleanup']['runs']}"
    )
