"""Which Redis failures mean "Redis can't take this now", as opposed to a bug of ours.

The first kind is answered the way an unreachable Redis is: the message goes to memory
storage and the service reports `degraded` with the reason. The second kind (`WRONGTYPE`,
an error raised by one of our Lua scripts, a wrong argument...) is a defect and stays a 500.

Redis names the kind of an error reply by its first word, also when the reply comes from
inside a Lua script (`OOM command not allowed ... script: ...`). redis-py turns some codes
into exception classes (OOM, READONLY, LOADING...) and leaves the others (MISCONF, BUSY,
NOREPLICAS) as a plain `ResponseError` whose message still starts with the code.

On a Redis Cluster, redis-py follows redirections and retries itself; what it gives up on
comes as its own exceptions: a slot it could not reach through MOVED/ASK/TRYAGAIN in time
(`ClusterError: TTL exhausted`) counts as `TRYAGAIN`, a slot no node serves in its view of
the cluster (`SlotNotCoveredError`) as `CLUSTERDOWN`, and a cluster none of whose nodes
answers (`RedisClusterException` raised from the `ConnectionError`) as unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import redis


@dataclass(frozen=True)
class Unavailable:
    """Why Redis can't serve now: `kind` is the error code, `timeout` or `unreachable`."""

    kind: str
    reason: str  # for people: /system/status, the logs
    reads: bool  # whether reads still work (a full Redis, a replica) while writes don't
    detail: str  # the error as raised


# Error codes of replies that say "not now": the same command may succeed later or elsewhere.
# The flag says whether Redis still answers reads in that state.
REFUSALS: dict[str, tuple[str, bool]] = {
    "OOM": ("Redis refuses writes: OOM (maxmemory reached)", True),
    "READONLY": ("Redis refuses writes: READONLY (a read-only replica)", True),
    "MISCONF": ("Redis refuses writes: MISCONF (it cannot persist to disk)", True),
    "NOREPLICAS": ("Redis refuses writes: NOREPLICAS (too few replicas in sync)", True),
    "MASTERDOWN": ("Redis refuses commands: MASTERDOWN (the replica lost its primary)", False),
    "LOADING": ("Redis is loading its data set: LOADING", False),
    "BUSY": ("Redis is busy running a script: BUSY", False),
    "CLUSTERDOWN": ("Redis Cluster is down: CLUSTERDOWN", False),
    "TRYAGAIN": ("Redis Cluster asked to try again: TRYAGAIN (slot being moved)", False),
}


def error_code(error: BaseException) -> str | None:
    """The Redis error code of an error reply (`OOM`, `WRONGTYPE`...), None for other errors."""
    if not isinstance(error, redis.ResponseError | redis.BusyLoadingError):
        return None
    code = getattr(error, "status_code", None)  # set by redis-py for the codes it knows
    if code:
        return str(code)
    words = str(error).split(" ", 1)
    return words[0] if words and words[0].isupper() else None


def _cluster_code(error: BaseException) -> str | None:
    """The reply code standing for redis-py's own cluster errors (see the module doc)."""
    if isinstance(error, redis.exceptions.SlotNotCoveredError):
        return "CLUSTERDOWN"
    if isinstance(error, redis.exceptions.ClusterError) and "TTL exhausted" in str(error):
        return "TRYAGAIN"
    return None


def classify(error: BaseException) -> Unavailable | None:
    """Why Redis can't serve this now, or None when `error` is not such a failure (a bug).

    Connection errors and timeouts (Redis unreachable, or slower than REDIS_TIMEOUT) count
    too; so do OS-level socket errors.
    """
    detail = f"{type(error).__name__}: {error}"
    code = error_code(error) or _cluster_code(error)
    if code is not None:
        if code not in REFUSALS:
            return None
        reason, reads = REFUSALS[code]
        return Unavailable(code, reason, reads, detail)
    if isinstance(error, redis.TimeoutError | TimeoutError):
        return Unavailable(
            "timeout", "Redis does not answer in time (REDIS_TIMEOUT)", False, detail
        )
    if isinstance(error, redis.ConnectionError | ConnectionError | OSError):
        return Unavailable("unreachable", "Redis is unreachable", False, detail)
    if error.__cause__ is not None:
        # redis-py wraps some failures: a cluster none of whose nodes answers is a
        # RedisClusterException raised from the ConnectionError.
        cause = classify(error.__cause__)
        return None if cause is None else replace(cause, detail=detail)
    return None
