"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import redis

from agent.models import OfflineChatModel
from agent.weather import SimulatedWeather
from session_policy.embedded_cluster import EmbeddedCluster
from session_policy.redis_server import EmbeddedRedis
from tests.server_process import ServerProcess

# A fixed moment (a Wednesday, noon UTC) so dates and simulated numbers never drift.
FIXED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture
def offline_model() -> OfflineChatModel:
    return OfflineChatModel(clock=fixed_clock)


@pytest.fixture
def simulated_weather() -> SimulatedWeather:
    return SimulatedWeather(clock=fixed_clock)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """One embedded Redis 8 (JSON + Search) for the test session, on a free port.

    Never skipped: without it the integration tests fail, so a green run means they ran.
    """
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The shared test Redis, emptied before each test that uses it."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[EmbeddedCluster]:
    """One embedded Redis Cluster for the test session: 3 primaries, a replica each.

    Never skipped, like `redis_server`. Tests that kill or move parts of it leave it with
    3 primaries serving every slot and a replica each again.
    """
    with EmbeddedCluster(3) as cluster:
        yield cluster


@pytest.fixture
def cluster_url(redis_cluster: EmbeddedCluster) -> str:
    """The shared test cluster (`redis+cluster://`), emptied before each test that uses it."""
    for port in redis_cluster.primary_ports():
        client = redis.Redis(port=port)
        client.flushall()
        client.close()
    return redis_cluster.url


@pytest.fixture(params=["redis", "cluster"])
def each_redis_url(request: pytest.FixtureRequest) -> str:
    """The test Redis, then the test cluster: for what must hold on both alike."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="module")
def server_redis() -> Iterator[EmbeddedRedis]:
    """A Redis for the server processes of one test module."""
    with EmbeddedRedis() as redis_server:
        yield redis_server


@pytest.fixture(scope="module")
def server(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    """`weather-agent serve` (offline model, simulated weather, 5 conversations a session)."""
    process = ServerProcess(server_redis.url, MAX_CONVERSATIONS_PER_SESSION="5").start()
    yield process
    process.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http
