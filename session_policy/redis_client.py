"""The service's Redis client, made from `REDIS_URL`: one Redis, or a Redis Cluster.

`redis://` and `rediss://` (TLS) name one Redis (a primary, with or without replicas).
`redis+cluster://[user:password@]host:port[,host:port...]` names a Redis Cluster by any of
its nodes (`rediss+cluster://` for TLS), the form Redis's Agent Memory Server accepts; the
client learns the rest of the cluster from them and runs on redis-py's `RedisCluster`, which
follows `MOVED` and `ASK`, and retries `TRYAGAIN` (a slot being moved) and, briefly with
backoff, a `TRYAGAIN` that outlasts its own tries, `CLUSTERDOWN` and lost connections (a
primary failing over). What still fails
after that goes to `Storage.unavailable()` like any Redis failure.

Both clients speak the same commands; where a cluster answers per node (INFO), `node_infos`
reads each node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

RedisClient = aioredis.Redis | aioredis.RedisCluster
"""What the stores are given: either client, used through the commands both have."""

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS

# A lost primary is replaced by its replica within about two cluster-node-timeouts; a
# command retries for under a second (3 tries, 0.1, 0.2, 0.4 s) before the service answers
# from memory, so a failover costs a short degraded spell, not a wall of slow requests.
CLUSTER_RETRIES = 3
CLUSTER_BACKOFF = ExponentialBackoff(cap=0.4, base=0.1)
MAX_CONNECTIONS_PER_NODE = 256


class RedisUrlError(ValueError):
    """`REDIS_URL` can't be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class ClusterUrl:
    """A `redis+cluster://` URL read: the nodes to start from and the credentials."""

    nodes: list[tuple[str, int]]
    tls: bool
    username: str | None
    password: str | None


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """The nodes and credentials of a `redis+cluster://` or `rediss+cluster://` URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise RedisUrlError(f"not a Redis Cluster URL (redis+cluster://host:port,...): {url!r}")
    rest, _, query = rest.partition("?")
    if query:
        raise RedisUrlError("a redis+cluster:// URL takes no ?options")
    netloc, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise RedisUrlError(f"Redis Cluster has database 0 only, not /{path}")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    nodes = []
    for item in netloc.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUrlError(f"Redis Cluster nodes are host:port, not {item!r} (in {url!r})")
        nodes.append((host.strip("[]"), int(port)))
    return ClusterUrl(nodes, CLUSTER_SCHEMES[scheme.lower()], username, password)


class _Cluster(aioredis.RedisCluster):
    # Not timeouts, as for one Redis: a node that stopped answering costs REDIS_TIMEOUT once,
    # not once per retry. `ClusterError` is redis-py giving up on TRYAGAIN after about 0.4 s
    # (a slot half moved: seen in the resharding test on a loaded machine); the backoff gives
    # the move longer. (The base class types this as its own 4-tuple.)
    ERRORS_ALLOW_RETRY = (  # type: ignore[assignment]
        redis.ConnectionError,
        redis.exceptions.ClusterDownError,
        redis.exceptions.SlotNotCoveredError,
        redis.exceptions.ClusterError,
    )

    async def _execute_command(self, target_node: ClusterNode, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._execute_command(target_node, *args, **kwargs)
        except _CLOSED_UNDER as error:
            raise _lost(error) from error

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise redis.exceptions.RedisClusterException("no shard_hint in cluster mode")
        # redis-py's own ClusterPipeline leaves `_event_dispatcher` abstract too.
        return _ClusterPipeline(self, transaction)  # type: ignore[abstract]


# redis-py resets the whole cluster client on CLUSTERDOWN (a failover), closing connections
# other commands are using at that moment: those fail with RuntimeError ("handler is
# closed") or AttributeError (a None writer). Their connection was lost: they are made a
# ConnectionError, retried like any lost connection and, if it persists, counted as Redis
# being unreachable (not as a bug of ours).
_CLOSED_UNDER = (RuntimeError, AttributeError)


def _lost(error: BaseException) -> redis.ConnectionError:
    return redis.ConnectionError(f"connection closed under the command: {error}")


class _ClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        try:
            replies = await super().execute(raise_on_error, allow_redirections)
        except _CLOSED_UNDER as error:
            raise _lost(error) from error
        return [_lost(r) if isinstance(r, _CLOSED_UNDER) else r for r in replies]


def make_client(url: str, timeout: float) -> RedisClient:
    """The client `url` names (commands time out after `timeout` seconds)."""
    if is_cluster_url(url):
        parsed = parse_cluster_url(url)
        return _Cluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            username=parsed.username,
            password=parsed.password,
            ssl=parsed.tls,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=MAX_CONNECTIONS_PER_NODE,
            # A MOVED (slots being resharded) updates the client's slot map; without this,
            # every 5th MOVED resets the whole client under the commands in flight.
            reinitialize_steps=0,
            retry=Retry(CLUSTER_BACKOFF, CLUSTER_RETRIES),
        )
    # A blocking pool queues for a free connection under bursts instead of failing with
    # "Too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # After a Redis restart, pooled connections are stale: one immediate retry on a
        # fresh connection tells "restarted" apart from "down". Timeouts are not retried: a
        # Redis that stopped answering costs REDIS_TIMEOUT, not twice.
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )
    return aioredis.Redis(connection_pool=pool)


def decodes_responses(client: RedisClient) -> bool:
    return bool(_connection_kwargs(client).get("decode_responses"))


def _connection_kwargs(client: RedisClient) -> dict[str, Any]:
    kwargs: dict[str, Any] = client.get_connection_kwargs()
    return kwargs


@dataclass(frozen=True)
class NodeInfo:
    """One node's INFO section: `name` is host:port; `error` when a replica did not answer
    (its `info` is then empty)."""

    name: str
    role: Literal["primary", "replica"]
    info: dict[str, Any]
    error: str | None = None


async def node_infos(client: RedisClient, *sections: str, replicas: bool = True) -> list[NodeInfo]:
    """INFO `sections` (one INFO per node) of every node holding data: the one Redis, or each
    node of the cluster (primaries first; replicas too unless `replicas=False`). A primary
    that fails raises (its sessions can't be served); a replica that fails is a row with its
    error."""
    if not isinstance(client, aioredis.RedisCluster):
        kwargs = _connection_kwargs(client)
        name = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        return [NodeInfo(name, "primary", await client.info(*sections))]
    if client._initialize:  # its nodes are known once it has connected
        await client.initialize()
    elif replicas:
        # The client learns the nodes (CLUSTER SLOTS) when it connects and when a command is
        # redirected or fails. That view goes stale: a replica is listed only once it holds
        # data, a failed node that rejoins is not redirected to. The report asks afresh.
        await client.nodes_manager.initialize()
    rows = [
        NodeInfo(node.name, "primary", await client.info(*sections, target_nodes=node))
        for node in client.get_primaries()
    ]
    for node in client.get_replicas() if replicas else []:
        try:
            rows.append(
                NodeInfo(node.name, "replica", await client.info(*sections, target_nodes=node))
            )
        except redis.RedisError as error:
            rows.append(NodeInfo(node.name, "replica", {}, f"{type(error).__name__}: {error}"))
    return rows


def primaries_total(rows: list[NodeInfo], field: str) -> int:
    """`field` summed over the primaries (the data set; replicas hold copies)."""
    return sum(int(row.info.get(field, 0)) for row in rows if row.role == "primary")
