"""The original Node.js API's endpoints and fields, against a real server process."""

from __future__ import annotations

import uuid

import httpx

from server.routes.legacy import DEPRECATED_SINCE


def new_user() -> str:
    return f"old-{uuid.uuid4().hex[:8]}"


def chat(client: httpx.Client, body: dict[str, str]) -> dict:  # type: ignore[type-arg]
    response = client.post("/chat", json=body)
    assert response.status_code == 200, response.text
    answer: dict = response.json()  # type: ignore[type-arg]
    return answer


def test_chat_without_user_id_is_the_default_user(client: httpx.Client) -> None:
    client.post("/sessions/default/end")
    first = chat(client, {"message": "Hi, I'm Ada"})
    second = chat(client, {"message": "Weather in London?"})
    # The original's fields, with ours beside them.
    assert {"response", "userId", "timestamp"} <= set(first)
    assert (first["userId"], first["success"]) == ("default", True)
    assert second["sessionId"] == first["sessionId"]
    assert second["sessionId"].startswith("session:default:")
    assert second["conversationCount"] == 2
    assert "London" in second["response"]
    listing = client.get("/sessions/default").json()
    assert (listing["success"], listing["activeSessions"]) == (True, 1)


def test_chat_with_null_user_id_is_still_refused(client: httpx.Client) -> None:
    response = client.post("/chat", json={"message": "hi", "userId": None})
    assert response.status_code == 422
    assert "leave userId out" in response.json()["error"]["message"]


def test_history_in_the_original_shape_and_deprecated(client: httpx.Client) -> None:
    user = new_user()
    asked = ["Weather in Oslo?", "and tomorrow?", "what about Paris?"]
    answers = [chat(client, {"message": m, "userId": user}) for m in asked]
    response = client.get(f"/history/{user}")
    assert response.status_code == 200
    assert response.headers["Deprecation"] == f"@{DEPRECATED_SINCE}"
    assert response.headers["Link"] == f'</sessions/{user}/history>; rel="successor-version"'
    body = response.json()
    assert set(body) == {"success", "userId", "history"}
    assert body["userId"] == user
    session_id = answers[0]["sessionId"]
    assert body["history"] == [
        {
            "timestamp": item["timestamp"],
            "message": message,
            "response": answer["response"],
            "sessionId": session_id,
        }
        for item, message, answer in zip(body["history"], asked, answers, strict=True)
    ]
    assert all(item["timestamp"].endswith("Z") for item in body["history"])
    assert [i["message"] for i in client.get(f"/history/{user}?limit=2").json()["history"]] == (
        asked[1:]
    )
    # The successor names the same conversations, and the original's `history`/`count` too.
    successor = client.get(f"/sessions/{user}/history").json()
    assert successor["history"] == body["history"]
    assert successor["count"] == 3
    one = client.get(f"/sessions/{user}/history/{session_id}").json()
    assert (one["success"], one["count"], one["history"]) == (True, 3, body["history"])


def test_history_of_a_user_without_a_session_is_empty(client: httpx.Client) -> None:
    response = client.get(f"/history/{new_user()}")
    assert response.status_code == 200
    assert response.json()["history"] == []
    assert response.headers["Deprecation"].startswith("@")


def test_history_refuses_hostile_user_ids(client: httpx.Client) -> None:
    response = client.get("/history/a*b")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_openapi_marks_history_deprecated(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/history/{userId}"]["get"]
    assert operation["deprecated"] is True
    assert {"Deprecation", "Link"} <= set(operation["responses"]["200"]["headers"])
    assert "deprecated" not in spec["paths"]["/sessions/{userId}/history"]["get"]
    chat_body = spec["components"]["schemas"]["ChatRequest"]
    assert chat_body["required"] == ["message"]


def test_end_and_system_routes_carry_the_original_fields(client: httpx.Client) -> None:
    user = new_user()
    chat(client, {"message": "hi", "userId": user})
    ended = client.post(f"/sessions/{user}/end", json={"reason": "user_requested"}).json()
    assert ended["success"] is True
    assert ended["message"] == f"All sessions ended for user {user}"
    assert ended["reason"] == "user_requested"
    for path in ("/system/status", "/system/memory"):
        body = client.get(path).json()
        assert body["success"] is True, path
        assert body["timestamp"].endswith("Z"), path
        assert body["features"]["redis"] is True, path
    assert client.get("/system/status").json()["status"] == "ok"  # ours: ok/degraded


def test_health_carries_the_original_fields(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "healthy"
    assert body["timestamp"].endswith("Z")
    assert body["features"] == {
        "langchain": False,  # the offline model
        "redis": True,
        "weatherAPI": False,  # simulated weather
        "sessionManagement": True,
    }


def test_any_origin_may_call_without_auth(client: httpx.Client) -> None:
    origin = "http://localhost:5173"
    preflight = client.options(
        "/chat",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    answer = client.get("/history/default", headers={"Origin": origin})
    assert answer.headers["access-control-allow-origin"] == "*"
    exposed = answer.headers["access-control-expose-headers"]
    assert {"Deprecation", "Link"} <= {h.strip() for h in exposed.split(",")}
