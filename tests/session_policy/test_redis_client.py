"""`REDIS_URL` forms: one Redis, or a Redis Cluster by its nodes (`redis+cluster://`)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from session_policy.config import SessionSettings
from session_policy.redis_client import (
    ClusterUrl,
    RedisUrlError,
    is_cluster_url,
    make_client,
    parse_cluster_url,
)


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("redis+cluster://10.0.0.1:7000", ClusterUrl([("10.0.0.1", 7000)], False, None, None)),
        (
            "redis+cluster://a:7000,b:7001, c:7002/0",
            ClusterUrl([("a", 7000), ("b", 7001), ("c", 7002)], False, None, None),
        ),
        (
            "rediss+cluster://app:s%40cret@redis.example.com:6380",
            ClusterUrl([("redis.example.com", 6380)], True, "app", "s@cret"),
        ),
        ("redis+cluster://:pw@[::1]:7000", ClusterUrl([("::1", 7000)], False, None, "pw")),
    ],
)
def test_cluster_urls(url: str, parsed: ClusterUrl) -> None:
    assert is_cluster_url(url)
    assert parse_cluster_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://a:7000/2", "database 0 only"),
        ("redis+cluster://a", "host:port"),
        ("redis+cluster://a:7000,b", "host:port"),
        ("redis+cluster://a:99999", "host:port"),
        ("redis+cluster://a:7000?ssl_cert_reqs=none", "no [?]options"),
    ],
)
def test_bad_cluster_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError, match=says):
        parse_cluster_url(url)
    with pytest.raises(ValidationError, match=says):  # at start-up, not at the first turn
        SessionSettings(redis_url=url)


def test_one_redis_and_a_cluster_get_their_clients() -> None:
    assert not is_cluster_url("redis://localhost:6379/0")
    assert not is_cluster_url("rediss://localhost:6380")
    single = make_client("redis://localhost:6379/0", 1.0)
    assert type(single) is aioredis.Redis
    cluster = make_client("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", 1.0)
    assert isinstance(cluster, aioredis.RedisCluster)
    assert [(n.host, n.port) for n in cluster.startup_nodes] == [
        ("127.0.0.1", 7000),
        ("127.0.0.1", 7001),
    ]
    assert cluster.get_connection_kwargs()["socket_timeout"] == 1.0
