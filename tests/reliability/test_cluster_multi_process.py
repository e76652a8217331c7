"""Two server processes on a Redis Cluster (3 primaries, a replica each), 200 users whose
messages alternate between them: as on one Redis (`test_multi_process`), one session per
user with exact counts and each expired session ended exactly once by the two racing
cleanup loops; and the users' keys spread over all three primaries.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from session_policy import keys
from session_policy.embedded_cluster import EmbeddedCluster
from tests.reliability.helpers import running_servers
from tests.reliability.test_multi_process import LIMITS, MESSAGES, USERS, converse_then_expire
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
    outcome = await converse_then_expire(cluster_servers)
    spread = user_keys_per_primary(redis_cluster)
    print(
        f"\n[cluster multi-process] {USERS} users x {len(MESSAGES)} messages over 2 processes "
        f"in {outcome.chat_s:.1f} s ({USERS * len(MESSAGES) / outcome.chat_s:.1f} turns/s); "
        f"all ended {outcome.waited_s:.1f} s later; ended by inactivity per process "
        f"{outcome.inactivity}; users' keys per primary {sorted(spread.values())} "
        f"({', '.join(f'{n / USERS:.0%}' for n in sorted(spread.values()))})"
    )
    assert sum(spread.values()) == USERS
    assert len(spread) == 3
    assert min(spread.values()) >= 0.2 * USERS, spread
    memory = outcome.memory["redis"]
    nodes = memory["nodes"]
    assert sorted(row["role"] for row in nodes) == ["primary"] * 3 + ["replica"] * 3
    primaries = [row for row in nodes if row["role"] == "primary"]
    assert memory["usedMemory"] == sum(row["usedMemory"] for row in primaries)
    assert memory["keys"]["total"] == sum(row["keys"] for row in primaries)
    # No primary has a limit: unlimited, written as Redis writes it.
    assert (memory["maxmemory"], memory["maxmemoryHuman"]) == (0, "0B")
