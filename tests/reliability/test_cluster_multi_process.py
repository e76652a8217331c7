"""Two server processes on a Redis Cluster (3 primaries, a replica each), 200 users whose
messages alternate between them: as on one Redis (`test_multi_process`), one session per
user with exact counts and each expired session ended exactly once by the two racing
cleanup loops; and the users' keys spread over all three primaries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from session_policy import keys
from session_policy.embedded_cluster import EmbeddedCluster
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
from tests.reliability.test_multi_process import (
    CONCURRENCY,
    LIMITS,
    MESSAGES,
    USERS,
    check_ended_once,
    converse,
)
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_servers(redis_cluster: EmbeddedCluster) -> Iterator[list[ServerProcess]]:
    for port in redis_cluster.primary_ports():
        with redis.Redis(port=port) as node:
            node.flushall()
    with running_servers(redis_cluster.url, 2, **LIMITS) as servers:
        yield servers


def user_keys_per_primary(cluster: EmbeddedCluster) -> dict[int, int]:
    """The test users' ended-record hashes (one per user, kept for the retention) by the
    primary holding them."""
    counts = {}
    for port in cluster.primary_ports():
        with redis.Redis(port=port) as node:
            # keys.user_ended("mp-<n>") for every shard tag; not the warm-up users'
            pattern = f"{keys.PREFIX}:{{*}}:mp-[0-9]*:ended"
            counts[port] = sum(1 for _ in node.scan_iter(match=pattern, count=1000))
    return counts


async def test_two_processes_on_a_cluster(
    cluster_servers: list[ServerProcess], redis_cluster: EmbeddedCluster
) -> None:
    https = [client(server.url, CONCURRENCY + 4) for server in cluster_servers]
    try:
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
        memory = await get_json(https[1], "/system/memory")
        per_process = [await ended_by_this_process(http) for http in https]
    finally:
        for http in https:
            await http.aclose()

    spread = user_keys_per_primary(redis_cluster)
    stats = status[0]["sessions"]
    inactivity = [counts.get("inactivity", 0) for counts in per_process]
    print(
        f"\n[cluster multi-process] {USERS} users x {len(MESSAGES)} messages over 2 processes "
        f"in {chat_s:.1f} s ({USERS * len(MESSAGES) / chat_s:.1f} turns/s); all ended "
        f"{waited_s:.1f} s later; ended by inactivity per process {inactivity}; users' keys "
        f"per primary {sorted(spread.values())} "
        f"({', '.join(f'{n / USERS:.0%}' for n in sorted(spread.values()))})"
    )
    assert {s["status"] for s in status} == {"ok"}
    assert status[1]["sessions"]["endedByReason"] == stats["endedByReason"]  # shared
    assert stats["endedByReason"]["inactivity"] == USERS
    assert stats["endedByReason"]["manual"] == 2  # the warm-up sessions
    assert sum(inactivity) == USERS  # no session ended twice, whichever process swept
    assert stats["activeSessions"] == 0
    assert sum(spread.values()) == USERS
    assert len(spread) == 3
    assert min(spread.values()) >= 0.2 * USERS, spread
    nodes = memory["redis"]["nodes"]
    assert sorted(row["role"] for row in nodes) == ["primary"] * 3 + ["replica"] * 3
    primaries = [row for row in nodes if row["role"] == "primary"]
    assert memory["redis"]["usedMemory"] == sum(row["usedMemory"] for row in primaries)
    assert memory["redis"]["keys"]["total"] == sum(row["keys"] for row in primaries)
