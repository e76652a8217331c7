"""`server.serving`: the socket `--workers N` serves on turns Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

from server import serving
from session_policy.redis_server import free_port


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection accepted by an asyncio server on `listener`."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await loop.create_server(Probe, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        value = await asyncio.wait_for(accepted, 10)
        writer.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


async def test_the_bound_socket_is_tcp_and_its_connections_get_nodelay() -> None:
    config = serving.make_config(host="127.0.0.1", port=free_port(), workers=2)
    listener = config.bind_socket()
    try:
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.getsockname()[1] == config.port
        assert await _nodelay_of_accepted(listener) != 0
    finally:
        listener.close()


def test_config_is_the_serve_command_s() -> None:
    config = serving.make_config(host="127.0.0.1", port=8123, workers=3)
    assert (config.app, config.factory, config.workers) == (serving.APP, True, 3)
    assert config.timeout_worker_healthcheck == serving.WORKER_HEALTHCHECK_TIMEOUT_S
    assert config.log_config is None
