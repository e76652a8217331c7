"""Which Redis failures count as "Redis can't serve now" and which are bugs of ours."""

from __future__ import annotations

import builtins

import pytest
import redis
from redis._parsers.base import BaseParser

from session_policy.redis_errors import REFUSALS, classify, error_code


def reply(text: str) -> redis.RedisError:
    """The exception redis-py raises for the error reply `text` (as the server sends it)."""
    error = BaseParser.parse_error(text)  # type: ignore[no-untyped-call]
    assert isinstance(error, redis.RedisError)
    return error


@pytest.mark.parametrize(
    ("text", "kind", "reads"),
    [
        ("OOM command not allowed when used memory > 'maxmemory'.", "OOM", True),
        # From inside one of our scripts: the code comes first all the same.
        ("OOM command not allowed when used memory. script: 21, on @user_script:1.", "OOM", True),
        ("READONLY You can't write against a read only replica.", "READONLY", True),
        ("MISCONF Redis is configured to save RDB snapshots, but...", "MISCONF", True),
        ("NOREPLICAS Not enough good replicas to write.", "NOREPLICAS", True),
        ("LOADING Redis is loading the dataset in memory", "LOADING", False),
        ("BUSY Redis is busy running a script. You can only call SCRIPT KILL", "BUSY", False),
        ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data", "MASTERDOWN", False),
        ("CLUSTERDOWN The cluster is down", "CLUSTERDOWN", False),
        ("TRYAGAIN Multiple keys request during rehashing of slot", "TRYAGAIN", False),
    ],
)  # fmt: skip
def test_refusals_are_unavailable(text: str, kind: str, reads: bool) -> None:
    problem = classify(reply(text))
    assert problem is not None
    assert (problem.kind, problem.reads) == (kind, reads)
    assert kind in problem.reason


@pytest.mark.parametrize(
    "text",
    [
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "ERR user_script:12: attempt to compare nil with number script: 9a1, on @user_script:12.",
        "ERR wrong number of arguments for 'hset' command",
        "NOSCRIPT No matching script. Please use EVAL.",
        "BUSYKEY Target key name already exists.",
        "NOPERM this user has no permissions to run the 'set' command",
    ],
)
def test_bugs_are_not(text: str) -> None:
    assert classify(reply(text)) is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (redis.ConnectionError("Error 111 connecting. Connection refused."), "unreachable"),
        (redis.AuthenticationError("invalid password"), "unreachable"),
        (redis.TimeoutError("Timeout reading from socket"), "timeout"),
        (builtins.TimeoutError(), "timeout"),
        (ConnectionResetError(104, "Connection reset by peer"), "unreachable"),
        (OSError(113, "No route to host"), "unreachable"),
    ],
)  # fmt: skip
def test_network_failures_are_unavailable(error: BaseException, kind: str) -> None:
    problem = classify(error)
    assert problem is not None
    assert (problem.kind, problem.reads) == (kind, False)
    assert type(error).__name__ in problem.detail


def test_other_errors_are_bugs() -> None:
    assert classify(ValueError("invalid literal for int()")) is None
    assert classify(KeyError("conversationCount")) is None
    assert error_code(ValueError("OOM")) is None  # only Redis replies carry codes


def test_every_refusal_is_described() -> None:
    for code, (reason, _) in REFUSALS.items():
        assert code in reason


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        # redis-py gave up following a slot on the move (MOVED/ASK/TRYAGAIN) in time
        (redis.exceptions.ClusterError("TTL exhausted."), "TRYAGAIN"),
        # no node serves the slot in the client's view of the cluster (a failover)
        (redis.exceptions.SlotNotCoveredError("Slot 42 is not covered"), "CLUSTERDOWN"),
    ],
)  # fmt: skip
def test_cluster_client_errors_are_unavailable(error: BaseException, kind: str) -> None:
    problem = classify(error)
    assert problem is not None
    assert problem.kind == kind


def test_a_cluster_none_of_whose_nodes_answers_is_unreachable() -> None:
    try:
        try:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:7000.")
        except redis.ConnectionError as lost:
            raise redis.exceptions.RedisClusterException(
                "Redis Cluster cannot be connected. Please provide at least one reachable node"
            ) from lost
    except redis.exceptions.RedisClusterException as error:
        problem = classify(error)
    assert problem is not None
    assert (problem.kind, problem.reason) == ("unreachable", "Redis is unreachable")
    assert problem.detail.startswith("RedisClusterException: Redis Cluster cannot be connected")
    # A wrapped bug stays a bug.
    wrapped = redis.exceptions.RedisClusterException("no shard_hint in cluster mode")
    wrapped.__cause__ = ValueError("ours")
    assert classify(wrapped) is None
