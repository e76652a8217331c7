"""`langgraph dev` serves langgraph.json's graph with the session policy active.

The LangGraph CLI (`langgraph-cli[inmem]`, a dev dependency) runs from the project's own `.venv`,
next to the Python running the tests. The server runs from the repository root, as a developer
would run it, with a copy of langgraph.json whose `env` (normally `.env`, whose values would
override ours) holds the test settings, and the thread is driven with `langgraph_sdk`.
Never skipped: if the CLI is missing, the test fails and says why.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from session_policy.redis_server import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
LOG = ARTIFACTS / "langgraph-dev.log"
CONFIG = ARTIFACTS / "langgraph-dev.json"
GRAPH_ID = "weather_agent"
START_TIMEOUT_S = 90

SERVER_ENV = {
    "MODEL": "offline",
    "WEATHER_PROVIDER": "simulated",
    "MAX_CONVERSATIONS_PER_SESSION": "2",
    "SESSION_DURATION": "3600",
    "INACTIVITY_TIMEOUT": "3600",
    "USER_MEMORY_TTL": "3600",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "PYTHONUNBUFFERED": "1",
}
# Not passed on from the test's environment: keys, tracing, other servers, our settings.
DROPPED_PREFIXES = ("LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_", "OPENAI_", "SESSION_")
DROPPED = {"PYTHONPATH", "PYTHONHOME", "REDIS_URL", "MODEL", "WEATHER_PROVIDER"}


def log_tail(chars: int = 4000) -> str:
    text = LOG.read_text(errors="replace") if LOG.exists() else "(no log)"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the server colours its log
    return f"--- {LOG.relative_to(ROOT)} (end) ---\n{text[-chars:]}"


def langgraph_executable() -> Path:
    """The `langgraph` of the environment running the tests (`.venv`)."""
    executable = Path(sys.executable).parent / "langgraph"
    if not executable.is_file():
        pytest.fail(
            f"{executable} not found: `langgraph-cli[inmem]` is in the dev group (`make setup`)",
            pytrace=False,
        )
    return executable


def server_config() -> Path:
    """langgraph.json with the test settings as its `env` instead of `.env`."""
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["env"] = SERVER_ENV
    CONFIG.write_text(json.dumps(config, indent=2) + "\n")
    return CONFIG


def server_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in DROPPED and not name.startswith(DROPPED_PREFIXES)
    }
    return {**env, **SERVER_ENV}


def served_url(requested_port: int) -> str:
    """The API's URL from the banner (`langgraph dev` moves to another port if ours was taken)."""
    match = re.search(r"API: \S*?(http://127\.0\.0\.1:\d+)", LOG.read_text(errors="replace"))
    return match.group(1) if match else f"http://127.0.0.1:{requested_port}"


def wait_until_ready(process: subprocess.Popen[bytes], port: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"`langgraph dev` exited ({process.returncode})\n{log_tail()}", pytrace=False
            )
        url = served_url(port)
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"`langgraph dev` not ready after {START_TIMEOUT_S} s\n{log_tail()}", pytrace=False)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # as Ctrl+C: uvicorn shuts down cleanly
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own process group (new session)
            process.wait()


@pytest.fixture(scope="module")
def langgraph_dev() -> Iterator[str]:
    """`langgraph dev` on a free port of 127.0.0.1; yields its URL, stops it afterwards."""
    executable = langgraph_executable()
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    command = [
        str(executable),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(server_config()),
    ]
    with LOG.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield wait_until_ready(process, port)
    finally:
        stop(process)


@pytest.fixture
async def client(langgraph_dev: str) -> AsyncIterator[LangGraphClient]:
    sdk = get_client(url=langgraph_dev, api_key=None, timeout=60)
    yield sdk
    await sdk.aclose()


class Thread:
    """One thread on the server, spoken to as one user."""

    def __init__(self, client: LangGraphClient, thread_id: str, user_id: str) -> None:
        self.client = client
        self.thread_id = thread_id
        self.user_id = user_id

    async def say(self, text: str) -> tuple[str, dict[str, Any]]:
        """Send one message: the answer, and the thread's state values after it."""
        message: dict[str, Any] = {"messages": [{"role": "human", "content": text}]}
        context = {"user_id": self.user_id}
        result = await self.client.runs.wait(
            self.thread_id, GRAPH_ID, input=message, context=context
        )
        assert isinstance(result, dict), result
        state = await self.client.threads.get_state(self.thread_id)
        values = state["values"]
        assert isinstance(values, dict), values
        assert values["messages"] == result["messages"]
        answer = values["messages"][-1]
        assert answer["type"] == "ai", answer
        assert isinstance(answer["content"], str), answer
        return answer["content"], values


def humans(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"] if m["type"] == "human"]


async def test_graph_has_the_session_nodes(client: LangGraphClient) -> None:
    drawn = await client.assistants.get_graph(GRAPH_ID)
    nodes = {node["id"] for node in drawn["nodes"]}
    assert {"session_gate", "model", "tools", "session_close"} <= nodes


async def test_thread_counts_conversations_and_rolls_over(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    # A user of its own: the server keeps its store in .langgraph_api/ from one run to the next.
    user_id = f"alice-{uuid.uuid4().hex[:8]}"
    thread = Thread(client, thread_id, user_id)

    answer, values = await thread.say("I'm Alice. What's the weather in London?")
    assert "Alice" in answer
    assert "London, United Kingdom" in answer
    first = values["session"]
    assert first["session_id"] == thread_id
    assert first["user_id"] == user_id
    assert first["conversation_count"] == 1
    assert first["status"] == "active"
    assert first["end_reason"] is None
    assert first["answered"] is True
    assert values["user_facts"] == {"name": "Alice"}

    # The second conversation reaches MAX_CONVERSATIONS_PER_SESSION=2: answered, then ended.
    answer, values = await thread.say("and tomorrow?")
    assert "Tomorrow in London, United Kingdom" in answer
    second = values["session"]
    assert second["session_id"] == thread_id
    assert second["started_at"] == first["started_at"]
    assert second["conversation_count"] == 2
    assert second["status"] == "ended"
    assert second["end_reason"] == "conversation_limit"
    assert humans(values) == ["I'm Alice. What's the weather in London?", "and tomorrow?"]

    # The third message starts a new session in the same thread: the old conversation is
    # gone, the message is still answered, and the name comes back from the server's store.
    answer, values = await thread.say("What's my name?")
    assert "Alice" in answer
    third = values["session"]
    assert third["session_id"] != thread_id
    assert third["session_id"].startswith(f"{thread_id}/")
    assert third["started_at"] >= second["last_activity"]
    assert third["conversation_count"] == 1
    assert third["status"] == "active"
    assert third["end_reason"] is None
    assert humans(values) == ["What's my name?"]
    assert not any("London" in str(m["content"]) for m in values["messages"])
    assert values["user_facts"] == {"name": "Alice"}
