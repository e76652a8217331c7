"""A server process killed with SIGKILL between turns: its users' sessions live on in Redis.

Nothing of the shutdown path runs on SIGKILL, so this checks that everything a session needs
is in Redis after each turn: a process started again on the same Redis continues each user's
session with its earlier turns (same session id, counts continue, history, the offline
model's follow-up resolving "and tomorrow?" from the thread).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.reliability.helpers import JSON, chat, client, get_json, kill_hard
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

# user -> the messages sent before the crash (the last city is what "and tomorrow?" is about).
CONVERSATIONS = {
    "crash-rome": ["Weather in Rome?"],
    "crash-oslo": ["Weather in Lima?", "Weather in Oslo?"],
    "crash-ana": ["I'm Ana", "Weather in Madrid?", "thanks"],
}
LAST_CITY = {"crash-rome": "Rome", "crash-oslo": "Oslo", "crash-ana": "Madrid"}


@pytest.fixture
def crash_server(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    process = ServerProcess(server_redis.url, RATE_LIMIT_PER_MINUTE="0").start()
    yield process
    process.stop()


async def test_session_survives_sigkill_between_turns(
    crash_server: ServerProcess, server_redis: EmbeddedRedis
) -> None:
    before: dict[str, JSON] = {}
    async with client(crash_server.url) as http:
        for user, messages in CONVERSATIONS.items():
            for message in messages:
                before[user] = await chat(http, user, message)
            assert before[user]["storage"] == "redis"
            assert before[user]["conversationCount"] == len(messages)

    pid = kill_hard(crash_server)
    store = redis.Redis.from_url(server_redis.url, decode_responses=True)
    try:  # what the killed process left: every session, unlocked
        for user in CONVERSATIONS:
            assert store.get(keys.user_active(user)) == before[user]["sessionId"]
            assert store.exists(keys.user_lock(user)) == 0
    finally:
        store.close()

    started = time.monotonic()
    crash_server.start()  # the same port, the same Redis
    restart_s = time.monotonic() - started
    async with client(crash_server.url) as http:
        assert (await get_json(http, "/system/status"))["status"] == "ok"
        for user, messages in CONVERSATIONS.items():
            answer = await chat(http, user, "and tomorrow?")
            assert answer["sessionId"] == before[user]["sessionId"]
            assert answer["conversationCount"] == len(messages) + 1
            assert answer["sessionStatus"] == "active"
            assert answer["response"].startswith(f"Tomorrow in {LAST_CITY[user]}"), answer
            history = await get_json(http, f"/sessions/{user}/history")
            assert history["sessionId"] == before[user]["sessionId"]
            said = [m["content"] for m in history["messages"] if m["role"] == "user"]
            assert said == [*messages, "and tomorrow?"]
            assert len(history["messages"]) == 2 * len(said)  # every earlier reply is there
            assert history["endedSessions"] == []  # the crash ended nothing
        name = await chat(http, "crash-ana", "What's my name?")
        assert "Ana" in name["response"]
    print(
        f"\n[crash] SIGKILLed pid {pid}; restarted in {restart_s:.1f} s; "
        f"{len(CONVERSATIONS)} sessions continued: "
        + ", ".join(f"{u} {len(m)}->{len(m) + 1} turns" for u, m in CONVERSATIONS.items())
    )
