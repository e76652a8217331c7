"""Abuse limits and concurrent messages against a real server process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from session_policy.redis_server import EmbeddedRedis
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def strict_server(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    process = ServerProcess(
        server_redis.url,
        MAX_MESSAGE_CHARS="50",
        MAX_BODY_BYTES="2048",
        RATE_LIMIT_PER_MINUTE="3",
        MAX_CONVERSATIONS_PER_SESSION="100",
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def reject_server(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    """Refuses double texting (the default queues it: see tests/reliability/test_double_texting)."""
    process = ServerProcess(
        server_redis.url, MAX_CONVERSATIONS_PER_SESSION="5", DOUBLE_TEXTING="reject"
    ).start()
    yield process
    process.stop()


def user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def test_message_too_long_is_413(strict_server: ServerProcess) -> None:
    response = httpx.post(f"{strict_server.url}/chat", json={"message": "x" * 51, "userId": user()})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "message_too_long"
    langserve = httpx.post(
        f"{strict_server.url}/agent/invoke",
        json={"input": {"messages": [{"type": "human", "content": "x" * 51}]}},
        headers={"X-User-Id": user()},
    )
    assert langserve.status_code == 413


def test_body_too_large_is_413(strict_server: ServerProcess) -> None:
    response = httpx.post(
        f"{strict_server.url}/chat",
        content=b'{"message": "hi", "userId": "a", "pad": "' + b"x" * 4000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "request body" in response.json()["error"]["message"]


def test_rate_limit_is_429_with_retry_after(strict_server: ServerProcess) -> None:
    who = user()
    codes = [
        httpx.post(f"{strict_server.url}/chat", json={"message": "hi", "userId": who}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    refused = httpx.post(f"{strict_server.url}/chat", json={"message": "hi", "userId": who})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"
    # Other users are not affected.
    assert (
        httpx.post(
            f"{strict_server.url}/chat", json={"message": "hi", "userId": user()}
        ).status_code
        == 200
    )


async def test_double_texting_answers_or_refuses_each_message(
    reject_server: ServerProcess,
) -> None:
    """DOUBLE_TEXTING=reject, 20 messages of one user at once: each answered or refused with
    409; the session holds exactly the answered turns, in order of their answers."""
    who = user()
    async with httpx.AsyncClient(base_url=reject_server.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/chat", json={"message": f"hi {i}", "userId": who}) for i in range(20))
        )
        codes = [r.status_code for r in responses]
        assert set(codes) <= {200, 409}
        answered = [r.json() for r in responses if r.status_code == 200]
        assert answered
        assert all(r.json()["error"]["code"] == "busy" for r in responses if r.status_code == 409)
        sessions = (await client.get(f"/sessions/{who}")).json()["sessions"]
        history = (await client.get(f"/sessions/{who}/history")).json()["messages"]
    counts = sorted(a["conversationCount"] for a in answered)
    assert counts == list(range(1, len(answered) + 1))
    assert sum(s["conversationCount"] for s in sessions) == len(answered)
    users_said = [m["content"] for m in history if m["role"] == "user"]
    by_count = [a for a in sorted(answered, key=lambda a: a["conversationCount"])]
    assert len(users_said) == len(by_count)
    assert len(set(users_said)) == len(users_said)
