"""Running the app under uvicorn: what `uvicorn.run` does, with one fix for `--workers N`.

With several workers (or `--reload`), uvicorn binds the listening socket itself and hands
it to the worker processes, and it creates that socket without naming its protocol. The
connections a worker accepts then report protocol 0, and asyncio, which turns Nagle's
algorithm off (`TCP_NODELAY`) only for sockets that say they are TCP, leaves it on: every
response on a kept-alive connection after the first then waits ~40 ms for the client's
delayed ACK (uvicorn issue #3149). `_Config.bind_socket` gives the socket its protocol.
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from uvicorn.supervisors import ChangeReload, Multiprocess

APP = "server.app:create_app"
# A worker imports the whole agent stack before it answers uvicorn's health check; on a
# small, busy machine that takes longer than uvicorn's default 5 s.
WORKER_HEALTHCHECK_TIMEOUT_S = 60
STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start


class _Config(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            # Same descriptor, now known as TCP: accepted connections inherit the protocol.
            return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, sock.detach())
        return sock


def make_config(*, host: str, port: int, workers: int = 1, reload: bool = False) -> uvicorn.Config:
    """The uvicorn configuration of `weather-agent serve`."""
    return _Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_config=None,  # keep our structured handler for uvicorn's loggers too
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
    )


def run(config: uvicorn.Config) -> None:
    """Serve until stopped, as `uvicorn.run` does (one process, workers, or reloading)."""
    server = uvicorn.Server(config)
    try:
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
        elif config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if not server.started and not config.should_reload and config.workers == 1:
        sys.exit(STARTUP_FAILURE)  # e.g. the port is taken: uvicorn logged why
