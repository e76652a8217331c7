"""`POST /system/cleanup` and `weather-agent cleanup`: one sweep now, answering what it ended.

The server's own timer is set to a day, so only the sweeps asked for here end anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from session_policy.redis_server import EmbeddedRedis
from tests.server_process import ROOT, ServerProcess

INACTIVITY_S = 1


@pytest.fixture(scope="module")
def quiet_server(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    process = ServerProcess(
        server_redis.url, INACTIVITY_TIMEOUT=str(INACTIVITY_S), CLEANUP_INTERVAL="86400000"
    ).start()
    yield process
    process.stop()


def idle_sessions(server: ServerProcess, count: int) -> list[str]:
    """`count` users' sessions, left idle until inactivity has expired them."""
    users = [f"idle-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    sessions = []
    for user in users:
        answer = httpx.post(f"{server.url}/chat", json={"message": "hi", "userId": user}).json()
        sessions.append(answer["sessionId"])
    time.sleep(INACTIVITY_S + 0.5)
    return sessions


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "cleanup", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_route_ends_expired_sessions_once(quiet_server: ServerProcess) -> None:
    expired = idle_sessions(quiet_server, 3)
    runs_before = httpx.get(f"{quiet_server.url}/system/status").json()["sessions"]["cleanup"]
    fresh = httpx.post(f"{quiet_server.url}/chat", json={"message": "hi", "userId": "fresh-1"})
    response = httpx.post(f"{quiet_server.url}/system/cleanup")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["endedCount"] == 3
    assert sorted(r["sessionId"] for r in body["ended"]) == sorted(expired)
    assert {r["endReason"] for r in body["ended"]} == {"inactivity"}
    assert body["durationMs"] >= 0
    # The fresh session stays; a second sweep finds nothing; both runs are counted.
    assert (
        httpx.get(f"{quiet_server.url}/sessions/fresh-1").json()["sessions"][0]["sessionId"]
        == (fresh.json()["sessionId"])
    )
    assert httpx.post(f"{quiet_server.url}/system/cleanup").json()["endedCount"] == 0
    runs_after = httpx.get(f"{quiet_server.url}/system/status").json()["sessions"]["cleanup"]
    assert runs_after["runs"] == runs_before["runs"] + 2
    httpx.post(f"{quiet_server.url}/sessions/fresh-1/end")  # not left for the next tests


def test_the_command_against_a_server(quiet_server: ServerProcess) -> None:
    expired = idle_sessions(quiet_server, 2)
    done = cli("--url", quiet_server.url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(r["sessionId"] for r in report["ended"]) == sorted(expired)
    human = cli("--url", quiet_server.url)
    assert human.returncode == 0, human.stderr
    assert "ended 0 expired sessions" in human.stdout


def test_the_command_in_process_sweeps_redis_url(
    quiet_server: ServerProcess, server_redis: EmbeddedRedis
) -> None:
    expired = idle_sessions(quiet_server, 2)
    done = cli("--json", REDIS_URL=server_redis.url, INACTIVITY_TIMEOUT=str(INACTIVITY_S))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(r["sessionId"] for r in report["ended"]) == sorted(expired)
    for session_id in expired:
        user = session_id.split(":")[1]
        assert httpx.get(f"{quiet_server.url}/sessions/{user}").json()["activeSessions"] == 0


def test_the_command_says_when_it_cannot_reach_the_server() -> None:
    done = cli("--url", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "cannot reach http://127.0.0.1:9" in done.stdout
