"""AUTH_MODE=token: user A's token can never read, stream into or end user B's sessions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from server.auth import mint, verify
from session_policy.redis_server import EmbeddedRedis
from tests.server_process import ServerProcess

SECRET = "test-secret-0123456789abcdef-0123456789"
ALLOWED_ORIGIN = "http://chat.example.test:8080"


@pytest.fixture(scope="module")
def secured(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    process = ServerProcess(
        server_redis.url, AUTH_MODE="token", AUTH_SECRET=SECRET, CORS_ORIGINS=ALLOWED_ORIGIN
    ).start()
    yield process
    process.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def alice_and_bob(secured: ServerProcess) -> tuple[str, str, dict[str, str], dict[str, str]]:
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    return alice, bob, bearer(mint(SECRET, alice)), bearer(mint(SECRET, bob))


def test_tokens_round_trip_and_tampering_fails() -> None:
    token = mint(SECRET, "alice")
    principal = verify(SECRET, token)
    assert principal is not None
    assert (principal.user_id, principal.admin) == ("alice", False)
    assert verify(SECRET, token.replace("alice", "bob")) is None
    assert verify("another-secret-0123456789abcdef-0123", token) is None
    assert verify(SECRET, mint(SECRET, "alice", days=-1)) is None
    assert verify(SECRET, mint(SECRET, None, admin=True)).admin  # type: ignore[union-attr]


def test_no_or_bad_token_is_401(secured: ServerProcess) -> None:
    for headers in ({}, bearer("nonsense"), bearer(mint(SECRET, "x", days=-1))):
        response = httpx.post(
            f"{secured.url}/chat", json={"message": "hi", "userId": "x"}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    assert httpx.get(f"{secured.url}/health").status_code == 200  # probes stay open


def test_a_user_reaches_only_their_own_sessions(
    secured: ServerProcess, alice_and_bob: tuple[str, str, dict[str, str], dict[str, str]]
) -> None:
    alice, bob, as_alice, as_bob = alice_and_bob
    url = secured.url
    own = httpx.post(f"{url}/chat", json={"message": "I'm Bob", "userId": bob}, headers=as_bob)
    assert own.status_code == 200
    bob_session = own.json()["sessionId"]

    refused = [
        httpx.post(f"{url}/chat", json={"message": "hi", "userId": bob}, headers=as_alice),
        httpx.get(f"{url}/sessions/{bob}", headers=as_alice),
        httpx.get(f"{url}/sessions/{bob}/history", headers=as_alice),
        httpx.get(f"{url}/sessions/{bob}/history/{bob_session}", headers=as_alice),
        httpx.post(f"{url}/sessions/{bob}/end", headers=as_alice),
        httpx.post(
            f"{url}/agent/invoke",
            json={"input": {"messages": [{"type": "human", "content": "hi"}]}},
            headers={**as_alice, "X-User-Id": bob},
        ),
        httpx.post(
            f"{url}/agent/invoke",
            json={
                "input": {"messages": [{"type": "human", "content": "hi"}]},
                "config": {"configurable": {"user_id": bob}},
            },
            headers=as_alice,
        ),
        httpx.post(
            f"{url}/agent/stream",
            json={"input": {"messages": [{"type": "human", "content": "hi"}]}},
            headers={**as_alice, "X-User-Id": bob},
        ),
        httpx.get(f"{url}/system/status", headers=as_alice),
        httpx.get(f"{url}/system/memory", headers=as_alice),
        httpx.get(f"{url}/metrics", headers=as_alice),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all(r.json()["error"]["code"] == "forbidden" for r in refused)

    # Bob's session is untouched: one conversation, still active.
    [session] = httpx.get(f"{url}/sessions/{bob}", headers=as_bob).json()["sessions"]
    assert (session["sessionId"], session["conversationCount"]) == (bob_session, 1)

    # Alice's own routes work, and on LangServe her user id comes from her token.
    with (
        httpx.Client(base_url=url, headers=as_alice, timeout=30) as client,
        connect_sse(
            client,
            "POST",
            "/agent/stream",
            json={"input": {"messages": [{"type": "human", "content": "Weather in Oslo?"}]}},
        ) as events,
    ):
        assert events.response.status_code == 200
        assert [e for e in events.iter_sse() if e.event == "data"]
    mine = httpx.get(f"{url}/sessions/{alice}", headers=as_alice).json()
    assert mine["activeSessions"] == 1


def test_admin_token(
    secured: ServerProcess, alice_and_bob: tuple[str, str, dict[str, str], dict[str, str]]
) -> None:
    _, bob, _, as_bob = alice_and_bob
    as_admin = bearer(mint(SECRET, None, admin=True))
    httpx.post(f"{secured.url}/chat", json={"message": "hi", "userId": bob}, headers=as_bob)
    assert httpx.get(f"{secured.url}/system/status", headers=as_admin).status_code == 200
    assert httpx.get(f"{secured.url}/metrics", headers=as_admin).status_code == 200
    ended = httpx.post(f"{secured.url}/sessions/{bob}/end", headers=as_admin)
    assert ended.status_code == 200
    assert len(ended.json()["endedSessions"]) == 1
    assert httpx.get(f"{secured.url}/sessions/{bob}", headers=as_bob).json()["activeSessions"] == 0


def test_chat_without_user_id_is_the_token_s_user(
    secured: ServerProcess, alice_and_bob: tuple[str, str, dict[str, str], dict[str, str]]
) -> None:
    alice, bob, as_alice, _ = alice_and_bob
    answer = httpx.post(f"{secured.url}/chat", json={"message": "hi"}, headers=as_alice)
    assert answer.status_code == 200, answer.text
    assert answer.json()["userId"] == alice
    assert answer.json()["sessionId"].startswith(f"session:{alice}:")
    history = httpx.get(f"{secured.url}/history/{alice}", headers=as_alice)
    assert [item["message"] for item in history.json()["history"]] == ["hi"]
    assert httpx.get(f"{secured.url}/history/{bob}", headers=as_alice).status_code == 403
    assert httpx.get(f"{secured.url}/history/{alice}").status_code == 401
    as_admin = bearer(mint(SECRET, None, admin=True))
    refused = httpx.post(f"{secured.url}/chat", json={"message": "hi"}, headers=as_admin)
    assert refused.status_code == 422
    assert "admin token" in refused.json()["error"]["message"]


def test_cleanup_needs_an_admin_token(
    secured: ServerProcess, alice_and_bob: tuple[str, str, dict[str, str], dict[str, str]]
) -> None:
    _, _, as_alice, _ = alice_and_bob
    assert httpx.post(f"{secured.url}/system/cleanup").status_code == 401
    assert httpx.post(f"{secured.url}/system/cleanup", headers=as_alice).status_code == 403
    as_admin = bearer(mint(SECRET, None, admin=True))
    answer = httpx.post(f"{secured.url}/system/cleanup", headers=as_admin)
    assert answer.status_code == 200
    assert answer.json()["success"] is True


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{url}/chat",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def test_token_mode_lets_only_the_named_origins_in(
    secured: ServerProcess, alice_and_bob: tuple[str, str, dict[str, str], dict[str, str]]
) -> None:
    _, _, as_alice, _ = alice_and_bob
    allowed = preflight(secured.url, ALLOWED_ORIGIN)  # no token: preflights carry none
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = preflight(secured.url, "http://elsewhere.example.test")
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    answer = httpx.post(
        f"{secured.url}/chat",
        json={"message": "hi"},
        headers={**as_alice, "Origin": ALLOWED_ORIGIN},
    )
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "Server-Timing" in answer.headers["access-control-expose-headers"]
