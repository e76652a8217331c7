"""A real server process for tests: `weather-agent serve` on a free port, stopped by the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from session_policy.redis_server import free_port

ROOT = Path(__file__).parents[1]


class ServerProcess:
    def __init__(self, redis_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = ROOT / "test-artifacts" / f"server-{self.port}.log"
        self.log.parent.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "MODEL": "offline",
            "WEATHER_PROVIDER": "simulated",
            "OPENAI_API_KEY": "",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90  # generous: the machine may be busy
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
