"""Every route of a real server process over HTTP, with SSE read by an SSE client."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import redis
from httpx_sse import connect_sse
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langserve import RemoteRunnable
from prometheus_client.parser import text_string_to_metric_families

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.server_process import ServerProcess


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def chat(client: httpx.Client, user: str, message: str) -> dict:  # type: ignore[type-arg]
    response = client.post("/chat", json={"message": message, "userId": user})
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


def test_chat_json(client: httpx.Client) -> None:
    user = new_user()
    first = chat(client, user, "What's the weather in London?")
    assert set(first) >= {
        "response", "userId", "sessionId", "conversationCount", "sessionStatus", "endReason",
        "timestamp",
    }  # fmt: skip
    assert "London" in first["response"]
    assert first["sessionId"].startswith(f"session:{user}:")
    assert (first["conversationCount"], first["sessionStatus"], first["endReason"]) == (
        1, "active", None,
    )  # fmt: skip
    assert first["timestamp"].endswith("Z")
    second = chat(client, user, "and tomorrow?")
    assert second["response"].startswith("Tomorrow in London")
    assert second["sessionId"] == first["sessionId"]
    assert second["conversationCount"] == 2


@pytest.mark.parametrize("how", ["body", "accept"])
def test_chat_streams_tokens_before_the_end_event(client: httpx.Client, how: str) -> None:
    user = new_user()
    body = {"message": "Weather in Madrid?", "userId": user}
    headers = {}
    if how == "body":
        body["stream"] = True  # type: ignore[assignment]
    else:
        headers["Accept"] = "text/event-stream"
    events = []
    with connect_sse(client, "POST", "/chat", json=body, headers=headers) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "end"
    assert kinds.count("token") > 10
    assert set(kinds[:-1]) == {"token"}
    text = "".join(data["text"] for kind, data in events if kind == "token")
    end = events[-1][1]
    assert text == end["response"]
    assert end["userId"] == user
    assert end["conversationCount"] == 1


def test_sessions_history_and_end(client: httpx.Client) -> None:
    user = new_user()
    first = chat(client, user, "Weather in Oslo?")
    chat(client, user, "and tomorrow?")
    listing = client.get(f"/sessions/{user}").json()
    assert listing["userId"] == user
    assert listing["activeSessions"] == 1
    [session] = listing["sessions"]
    assert session["sessionId"] == first["sessionId"]
    assert session["conversationCount"] == 2
    assert session["status"] == "active"
    assert session["endsBy"] in ("duration", "inactivity")
    assert session["expiresAt"].endswith("Z")

    history = client.get(f"/sessions/{user}/history").json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 2
    assert history["messages"][0]["content"] == "Weather in Oslo?"
    assert all(m["timestamp"] for m in history["messages"])
    assert (
        client.get(f"/sessions/{user}/history", params={"limit": 1}).json()["messages"][0]["role"]
        == "assistant"
    )
    one = client.get(f"/sessions/{user}/history/{first['sessionId']}").json()
    assert (one["status"], len(one["messages"])) == ("active", 4)

    ended = client.post(f"/sessions/{user}/end", json={"reason": "user_requested"}).json()
    assert ended == {
        "userId": user,
        "endedSessions": [first["sessionId"]],
        "reason": "user_requested",
        # the original API's fields (see test_compat)
        "success": True,
        "message": f"All sessions ended for user {user}",
    }
    assert client.get(f"/sessions/{user}").json()["activeSessions"] == 0
    record = client.get(f"/sessions/{user}/history/{first['sessionId']}").json()
    assert record["status"] == "ended"
    assert record["messages"] == []
    assert record["record"]["endReason"] == "manual"
    assert record["record"]["conversationCount"] == 2
    after = client.get(f"/sessions/{user}/history").json()
    assert after["sessionId"] is None
    assert [r["sessionId"] for r in after["endedSessions"]] == [first["sessionId"]]


def test_another_users_session_is_404(client: httpx.Client) -> None:
    owner, other = new_user(), new_user()
    session_id = chat(client, owner, "hi")["sessionId"]
    response = client.get(f"/sessions/{other}/history/{session_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_conversation_limit_over_http(client: httpx.Client) -> None:
    user = new_user()
    answers = [chat(client, user, "hi") for _ in range(6)]  # the server runs with a limit of 5
    assert answers[4]["sessionStatus"] == "ended"
    assert answers[4]["endReason"] == "conversation_limit"
    assert answers[5]["sessionId"] != answers[0]["sessionId"]
    assert answers[5]["conversationCount"] == 1


def test_system_routes(client: httpx.Client) -> None:
    chat(client, new_user(), "hi")
    status = client.get("/system/status").json()
    assert status["status"] == "ok"
    assert status["storageMode"] == "redis"
    assert status["redis"]["connected"] is True
    assert status["redis"]["pingMs"] >= 0
    assert status["sessionConfig"]["maxConversationsPerSession"] == 5
    assert status["sessionConfig"]["doubleTexting"] == "enqueue"  # the default
    assert status["sessionConfig"]["doubleTextingTimeout"] == 30
    assert status["sessions"]["activeSessions"] >= 1
    assert status["model"] == "offline"
    assert status["weather"] == "simulated"
    assert status["uptime"] > 0
    memory = client.get("/system/memory").json()
    assert memory["storageMode"] == "redis"
    assert memory["redis"]["usedMemory"] > 0
    assert memory["redis"]["usedMemoryHuman"]
    assert memory["redis"]["activeSessions"] >= 1
    assert memory["redis"]["averageBytesPerSession"] > 0
    assert memory["process"]["rss"] > 0
    health = client.get("/health").json()
    assert health["status"] == "healthy"  # the original API's value (was "ok"; see README)
    assert health["features"]["redis"] is True
    assert client.get("/ready").json()["ready"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/chat", {"message": "hi", "userId": "a:b"}, 422),
        ("POST", "/chat", {"message": "hi", "userId": "*"}, 422),
        ("POST", "/chat", {"message": "", "userId": "ok"}, 422),
        ("POST", "/chat", {"userId": "ok"}, 422),
        ("POST", "/chat", {"message": 5, "userId": "ok"}, 422),
        ("GET", "/sessions/a*b", None, 422),
        ("GET", "/sessions/ok/history?limit=0", None, 422),
        ("GET", "/nowhere", None, 404),
    ],
)
def test_errors_are_json(
    client: httpx.Client, method: str, path: str, body: object, status: int
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"]
    assert error["message"]
    assert "Traceback" not in response.text


def test_openapi_documents_every_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/chat", "/sessions/{userId}", "/sessions/{userId}/history",
        "/sessions/{userId}/history/{sessionId}", "/sessions/{userId}/end", "/system/memory",
        "/system/status", "/health", "/ready", "/agent/invoke", "/agent/stream",
        "/agent/stream_events",
    } <= paths  # fmt: skip
    assert client.get("/docs").status_code == 200


# --- LangServe -----------------------------------------------------------------------


def test_remote_runnable_invoke_and_stream(server: ServerProcess) -> None:
    user = new_user()
    agent: RemoteRunnable[dict[str, list[HumanMessage]], AIMessageChunk] = RemoteRunnable(
        f"{server.url}/agent/"
    )
    config: RunnableConfig = {"configurable": {"user_id": user}}
    answer = agent.invoke({"messages": [HumanMessage("Weather in Rome?")]}, config=config)
    assert "Rome, Italy" in answer.content
    session = answer.response_metadata["session"]
    assert session["userId"] == user
    chunks = list(agent.stream({"messages": [HumanMessage("and tomorrow?")]}, config=config))
    assert len([c for c in chunks if c.text]) > 10
    assert "".join(c.text for c in chunks).startswith("Tomorrow in Rome")


def test_agent_stream_over_sse(client: httpx.Client) -> None:
    user = new_user()
    body = {"input": {"messages": [{"type": "human", "content": "Weather in Lima?"}]}}
    with connect_sse(
        client, "POST", "/agent/stream", json=body, headers={"X-User-Id": user}
    ) as source:
        events = [(e.event, e.data) for e in source.iter_sse()]
    data = [json.loads(d) for kind, d in events if kind == "data"]
    assert len([d for d in data if d["content"]]) > 10
    assert events[-1][0] == "end"
    assert "".join(d["content"] for d in data).startswith("Right now in Lima")


def test_agent_stream_events_has_model_tokens(client: httpx.Client) -> None:
    body = {
        "input": {"messages": [{"type": "human", "content": "Weather in Quito?"}]},
        "config": {"configurable": {"user_id": new_user()}},
    }
    with connect_sse(client, "POST", "/agent/stream_events", json=body) as source:
        events = [json.loads(e.data) for e in source.iter_sse() if e.event == "data"]
    kinds = {e["event"] for e in events}
    assert {"on_chain_start", "on_chat_model_stream", "on_tool_start", "on_chain_end"} <= kinds
    tokens = [e["data"]["chunk"]["content"] for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(tokens).count("Quito") >= 1


def test_playground_whole_history_does_not_duplicate_turns(client: httpx.Client) -> None:
    """LangServe's chat client sends every message each turn; the session stores each once."""
    user = new_user()
    sent: list[dict[str, str]] = []
    for text in ("Weather in Paris?", "and tomorrow?", "thanks"):
        sent.append({"type": "human", "content": text})
        out = client.post(
            "/agent/invoke", json={"input": {"messages": sent}}, headers={"X-User-Id": user}
        ).json()["output"]
        sent.append({"type": "ai", "content": out["content"]})
    history = client.get(f"/sessions/{user}/history").json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == [
        "Weather in Paris?", "and tomorrow?", "thanks",
    ]  # fmt: skip
    assert len(history) == 6


def test_client_thread_id_is_ignored(client: httpx.Client, server_redis: EmbeddedRedis) -> None:
    victim, attacker = new_user(), new_user()
    victim_session = chat(client, victim, "I'm Victor")["sessionId"]
    response = client.post(
        "/agent/invoke",
        json={
            "input": {"messages": [{"type": "human", "content": "I'm Mallory"}]},
            "config": {"configurable": {"thread_id": victim_session, "user_id": attacker}},
        },
    )
    assert response.status_code in (200, 422)
    history = client.get(f"/sessions/{victim}/history").json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["I'm Victor"]
    if response.status_code == 200:
        meta = response.json()["output"]["response_metadata"]["session"]
        assert meta["userId"] == attacker
        assert meta["sessionId"] != victim_session
    raw = redis.Redis.from_url(server_redis.url)
    assert raw.exists(keys.thread(victim_session))
    raw.close()


def test_invalid_user_header_is_refused(client: httpx.Client) -> None:
    response = client.post(
        "/agent/invoke",
        json={"input": {"messages": [{"type": "human", "content": "hi"}]}},
        headers={"X-User-Id": "a:b"},
    )
    assert response.status_code == 400
    assert "invalid userId" in response.json()["error"]["message"]


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_parse_and_move_with_turns(client: httpx.Client) -> None:
    before = _samples(client)
    user = new_user()
    chat(client, user, "Weather in Rome?")
    chat(client, user, "and tomorrow?")
    client.post(f"/sessions/{user}/end")
    after = _samples(client)

    def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
        return float(samples.get((name, tuple(sorted(labels.items()))), 0.0))

    assert (
        value(after, "weather_agent_turns_total", storage="redis")
        == value(before, "weather_agent_turns_total", storage="redis") + 2
    )
    assert (
        value(after, "weather_agent_turn_latency_seconds_count")
        == value(before, "weather_agent_turn_latency_seconds_count") + 2
    )
    assert (
        value(after, "weather_agent_sessions_ended_total", reason="manual")
        == value(before, "weather_agent_sessions_ended_total", reason="manual") + 1
    )
    assert value(after, "weather_agent_storage_mode", mode="redis") == 1
    assert value(after, "weather_agent_redis_used_memory_bytes") > 0
    assert ("weather_agent_active_sessions", (("storage", "redis"),)) in after


def test_turns_and_session_ends_are_logged(server: ServerProcess, client: httpx.Client) -> None:
    user = new_user()
    turn = chat(client, user, "Weather in Bern?")
    client.post(f"/sessions/{user}/end")
    log = server.log.read_text()
    turn_line = next(
        line
        for line in log.splitlines()
        if f"session_id={turn['sessionId']}" in line and " turn " in line
    )
    assert f"user_id={user}" in turn_line
    assert "conversation_count=1" in turn_line
    assert "latency_ms=" in turn_line
    end_line = next(line for line in log.splitlines() if "session ended" in line and user in line)
    assert "reason=manual" in end_line
