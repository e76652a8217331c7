"""Hostile input against a real server process: each bad request is a 4xx with a JSON error
`{"error": {"code", "message"}}`, and nothing reaches Redis (its keys are the same after).

Covers `/chat` (JSON body), the `/sessions/{userId}...` routes (URL-encoded ids), the body of
`POST /sessions/{userId}/end`, and LangServe's `/agent/invoke`, `/agent/stream` (and, for
what used to be a 500 or an error inside a 200 stream, `/agent/stream_events` and
`/agent/batch`): bad JSON, wrong shapes, hostile `X-User-Id` and `configurable.user_id`.
The server runs with its defaults: messages up to 4000 characters, bodies up to 64 KiB.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis

from session_policy.redis_server import EmbeddedRedis

MAX_MESSAGE_CHARS = 4000
MAX_BODY_BYTES = 65_536

# User ids that must never become a key: separators, patterns, hash tags, traversal, dots
# only (URL dot-segments), sizes, control characters, non-ASCII.
HOSTILE_IDS = {
    "colon": "a:b",
    "star": "*",
    "question mark": "a?",
    "brackets": "[ab]",
    "hash tag": "{a}",
    "traversal": "../x",
    "slash": "a/b",
    "backslash": "a\\b",
    "dot": ".",
    "dot-dot": "..",
    "empty": "",
    "129 chars": "a" * 129,
    "10 KB": "a" * 10_240,
    "null byte": "a\x00b",
    "newline": "a\nb",
    "CRLF": "a\r\nb",
    "tab": "a\tb",
    "escape sequence": "\x1b[31mred",
    "DEL": "a\x7f",
    "space": "a b",
    "percent": "a%2Fb",
    "emoji": "😀",
    "accented": "é",
    "zero-width space": "a\u200bb",
    "right-to-left override": "\u202eab",
}


def new_user() -> str:
    return f"hostile-{uuid.uuid4().hex[:8]}"


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


@pytest.fixture
def raw_redis(server_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server_redis.url)
    yield client
    client.close()


@contextmanager
def nothing_stored(raw_redis: redis.Redis) -> Iterator[None]:
    """The block leaves Redis as it found it: the same keys, none added or removed."""
    before = set(raw_redis.scan_iter("*"))
    yield
    after = set(raw_redis.scan_iter("*"))
    assert after == before, f"added {after - before}, removed {before - after}"


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    """A `status` answer with a short JSON error (and no trace); its message."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    assert len(response.content) < 2000  # a 10 KB id or message is not echoed back
    message: str = body["error"]["message"]
    return message


def post_json(client: httpx.Client, path: str, body: bytes, **headers: str) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": "application/json", **headers})


# --- /chat ----------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_chat_refuses_hostile_user_ids(
    client: httpx.Client, raw_redis: redis.Redis, user_id: str
) -> None:
    with nothing_stored(raw_redis):
        for stream in (False, True):
            response = client.post(
                "/chat", json={"message": "Weather in Rome?", "userId": user_id, "stream": stream}
            )
            message = assert_json_error(response, 422, "invalid_request")
            assert message.startswith("userId: ")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"{bad", 422, id="invalid JSON"),
        pytest.param(b'{"message": "hi", "userId": "ok"', 422, id="truncated JSON"),
        pytest.param(b'{"message": "\xff", "userId": "ok"}', 400, id="not UTF-8"),
        pytest.param(b"", 422, id="empty"),
        pytest.param(b"null", 422, id="null"),
        pytest.param(b"[]", 422, id="array"),
        pytest.param(b'"hi"', 422, id="string"),
        pytest.param(b"{}", 422, id="no fields"),
        pytest.param(b'{"userId": "ok"}', 422, id="no message"),
        pytest.param(b'{"message": "", "userId": "ok"}', 422, id="empty message"),
        pytest.param(b'{"message": 5, "userId": "ok"}', 422, id="message number"),
        pytest.param(b'{"message": null, "userId": "ok"}', 422, id="message null"),
        pytest.param(b'{"message": ["hi"], "userId": "ok"}', 422, id="message array"),
        pytest.param(b'{"message": {"text": "hi"}, "userId": "ok"}', 422, id="message object"),
        pytest.param(b'{"message": "hi", "userId": 5}', 422, id="userId number"),
        pytest.param(b'{"message": "hi", "userId": null}', 422, id="userId null"),
        pytest.param(b'{"message": "hi", "userId": ["ok"]}', 422, id="userId array"),
        pytest.param(b'{"message": "hi", "userId": "ok", "stream": "maybe"}', 422, id="stream"),
        pytest.param(b'{"message": "hi", "userId": "ok", "admin": true}', 422, id="extra field"),
    ],
)
def test_chat_refuses_malformed_bodies(
    client: httpx.Client, raw_redis: redis.Redis, body: bytes, status: int
) -> None:
    with nothing_stored(raw_redis):
        assert_json_error(post_json(client, "/chat", body), status)


def test_chat_body_must_be_json(client: httpx.Client, raw_redis: redis.Redis) -> None:
    body = json.dumps({"message": "hi", "userId": new_user()}).encode()
    with nothing_stored(raw_redis):
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            response = client.post("/chat", content=body, headers={"Content-Type": content_type})
            assert_json_error(response, 422, "invalid_request")


@pytest.mark.parametrize("stream", [False, True])
def test_chat_refuses_oversized_messages(
    client: httpx.Client, raw_redis: redis.Redis, stream: bool
) -> None:
    user = new_user()
    too_long = "x" * (MAX_MESSAGE_CHARS + 1)
    with nothing_stored(raw_redis):
        body = {"message": too_long, "userId": user, "stream": stream}
        message = assert_json_error(client.post("/chat", json=body), 413, "message_too_long")
        assert str(MAX_MESSAGE_CHARS) in message
        emoji = "😀" * (MAX_MESSAGE_CHARS + 1)  # characters are counted, not bytes
        response = client.post("/chat", json={"message": emoji, "userId": user, "stream": stream})
        assert_json_error(response, 413, "message_too_long")


def test_chat_refuses_oversized_bodies(client: httpx.Client, raw_redis: redis.Redis) -> None:
    body = json.dumps({"message": "x" * MAX_BODY_BYTES, "userId": new_user()}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    with nothing_stored(raw_redis):
        assert_json_error(post_json(client, "/chat", body), 413, "payload_too_large")
        json_type = {"Content-Type": "application/json"}
        response = client.post("/chat", content=chunks(), headers=json_type)
        assert_json_error(response, 413, "payload_too_large")


# --- /sessions/{userId}... --------------------------------------------------------------


def encoded(user_id: str) -> str:
    """Percent-encoded for a path segment, dots included (clients drop `.` and `..`)."""
    return quote(user_id, safe="").replace(".", "%2E")


@pytest.mark.parametrize("user_id", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_session_routes_refuse_hostile_ids(
    client: httpx.Client, raw_redis: redis.Redis, user_id: str
) -> None:
    # An encoded slash (%2F) is decoded before routing: an extra path segment, and an empty
    # id an empty one; neither matches a route (404).
    status = 404 if "/" in user_id or not user_id else 422
    path = f"/sessions/{encoded(user_id)}"
    with nothing_stored(raw_redis):
        assert_json_error(client.get(path), status)
        assert_json_error(client.get(f"{path}/history"), status)
        assert_json_error(client.get(f"{path}/history/session:{encoded(user_id)}:1"), status)
        assert_json_error(client.post(f"{path}/end"), status)
        assert_json_error(client.post(f"{path}/end", json={"reason": "bye"}), status)


@pytest.mark.parametrize(
    "session_id",
    ["*", "session:*:1", "session:someone-else:1", "session:x:1:2", "a\x00b", "😀", "s" * 10_240],
)
def test_session_history_of_a_hostile_session_id_is_404(
    client: httpx.Client, raw_redis: redis.Redis, session_id: str
) -> None:
    with nothing_stored(raw_redis):
        response = client.get(f"/sessions/{new_user()}/history/{encoded(session_id)}")
        assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"{bad", 422, id="invalid JSON"),
        pytest.param(b'{"reason": "\xff"}', 400, id="not UTF-8"),
        pytest.param(b"[]", 422, id="array"),
        pytest.param(b'{"reason": 5}', 422, id="reason number"),
        pytest.param(b'{"reason": ["a"]}', 422, id="reason array"),
        pytest.param(json.dumps({"reason": "x" * 201}).encode(), 422, id="reason too long"),
        pytest.param(b'{"why": "x"}', 422, id="extra field"),
    ],
)
def test_end_refuses_malformed_bodies_and_ends_nothing(
    client: httpx.Client, raw_redis: redis.Redis, body: bytes, status: int
) -> None:
    user = new_user()
    chat = client.post("/chat", json={"message": "Weather in Oslo?", "userId": user})
    assert chat.status_code == 200, chat.text
    with nothing_stored(raw_redis):
        assert_json_error(post_json(client, f"/sessions/{user}/end", body), status)
    assert client.get(f"/sessions/{user}").json()["activeSessions"] == 1


# --- LangServe: /agent/invoke, /agent/stream ----------------------------------------------

AGENT_ROUTES = ["/agent/invoke", "/agent/stream"]
HI = {"input": human("hi")}


@pytest.mark.parametrize("route", AGENT_ROUTES)
@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"{bad", 422, id="invalid JSON"),
        pytest.param(b'{"input": "\xff"}', 400, id="not UTF-8"),
        pytest.param(b"", 422, id="empty"),
        pytest.param(b"[1]", 422, id="array"),
        pytest.param(b"{}", 422, id="no input"),
        pytest.param(b'{"input": "hi"}', 422, id="input string"),
        pytest.param(b'{"input": {}}', 422, id="no messages"),
        pytest.param(b'{"input": {"messages": "hi"}}', 422, id="messages string"),
        pytest.param(b'{"input": {"messages": [["human", "hi"]]}}', 422, id="message tuple"),
        pytest.param(b'{"input": {"messages": ["hi"]}}', 422, id="message string"),
        pytest.param(b'{"input": {"messages": [null]}}', 422, id="message null"),
        pytest.param(b'{"input": {"messages": [{"content": "hi"}]}}', 422, id="no type"),
        pytest.param(b'{"input": {"messages": [{"type": 5, "content": "hi"}]}}', 422, id="type 5"),
        pytest.param(
            b'{"input": {"messages": [{"type": "bogus", "content": "hi"}]}}', 422, id="bad type"
        ),
        pytest.param(
            b'{"input": {"messages": [{"type": "human", "content": 5}]}}', 422, id="content 5"
        ),
        pytest.param(
            json.dumps(
                {
                    "input": {
                        "messages": [
                            {
                                "type": "ai",
                                "content": "",
                                "tool_calls": [{"name": "x", "args": {}, "id": "1", "bad": 1}],
                            }
                        ]
                    }
                }
            ).encode(),
            422,
            id="tool call with an unknown key",
        ),
        pytest.param(json.dumps({**HI, "config": "x"}).encode(), 422, id="config string"),
        pytest.param(
            json.dumps({**HI, "config": {"configurable": "x"}}).encode(), 422, id="configurable"
        ),
    ],
)
def test_agent_refuses_malformed_bodies(
    client: httpx.Client, raw_redis: redis.Redis, route: str, body: bytes, status: int
) -> None:
    with nothing_stored(raw_redis):
        response = post_json(client, route, body, **{"X-User-Id": new_user()})
        assert_json_error(response, status)  # JSON, not an event stream


def test_a_message_tuple_is_a_clear_422(client: httpx.Client) -> None:
    """LangServe's own validation raised TypeError here: a 500 before."""
    response = client.post("/agent/invoke", json={"input": {"messages": [["human", "hi"]]}})
    message = assert_json_error(response, 422, "invalid_request")
    assert message.startswith("messages: each message is an object like")


@pytest.mark.parametrize("route", AGENT_ROUTES)
@pytest.mark.parametrize(
    "user_id",
    # What an HTTP client can send in a header (h11 refuses NUL, CR, LF and other controls);
    # non-ASCII arrives as bytes. An empty header means "no header": the default user.
    [
        b"a:b",
        b"*",
        b"{a}",
        b"../x",
        b".",
        b"..",
        b"a b",
        b"a\tb",
        b"a" * 129,
        b"a" * 10_240,
        "😀".encode(),
        "é".encode(),
        b"\xff",
    ],
    ids=lambda value: repr(value[:12]),
)
def test_agent_refuses_hostile_user_header(
    client: httpx.Client, raw_redis: redis.Redis, route: str, user_id: bytes
) -> None:
    with nothing_stored(raw_redis):
        response = client.post(route, json=HI, headers=[(b"X-User-Id", user_id)])
        message = assert_json_error(response, 400, "bad_request")
        assert message.startswith("invalid userId")


@pytest.mark.parametrize("route", AGENT_ROUTES)
@pytest.mark.parametrize(
    "user_id",
    [*HOSTILE_IDS.values(), 5, None, [], {}],
    ids=[*HOSTILE_IDS.keys(), "number", "null", "array", "object"],
)
def test_agent_refuses_hostile_configurable_user_id(
    client: httpx.Client, raw_redis: redis.Redis, route: str, user_id: object
) -> None:
    body = {**HI, "config": {"configurable": {"user_id": user_id}}}
    with nothing_stored(raw_redis):
        message = assert_json_error(client.post(route, json=body), 422, "invalid_request")
        assert message.startswith("configurable.user_id: ")


@pytest.mark.parametrize("route", [*AGENT_ROUTES, "/agent/stream_events"])
def test_agent_refuses_oversized_messages_before_answering(
    client: httpx.Client, raw_redis: redis.Redis, route: str
) -> None:
    """A 413, not an `error` event inside a 200 stream."""
    body = {"input": human("x" * (MAX_MESSAGE_CHARS + 1))}
    with nothing_stored(raw_redis):
        response = client.post(route, json=body, headers={"X-User-Id": new_user()})
        assert_json_error(response, 413, "message_too_long")


@pytest.mark.parametrize("route", AGENT_ROUTES)
def test_agent_refuses_oversized_bodies(
    client: httpx.Client, raw_redis: redis.Redis, route: str
) -> None:
    body = {"input": human("hi"), "pad": "x" * MAX_BODY_BYTES}
    with nothing_stored(raw_redis):
        response = client.post(route, json=body, headers={"X-User-Id": new_user()})
        assert_json_error(response, 413, "payload_too_large")


def test_agent_batch_refuses_malformed_and_oversized_inputs(
    client: httpx.Client, raw_redis: redis.Redis
) -> None:
    """LangServe validates batch inputs outside its error translation: a 500 before."""
    headers = {"X-User-Id": new_user()}
    with nothing_stored(raw_redis):
        bad = {"inputs": [human("hi"), {"messages": [["human", "hi"]]}]}
        assert_json_error(client.post("/agent/batch", json=bad, headers=headers), 422)
        long = {"inputs": [human("x" * (MAX_MESSAGE_CHARS + 1))]}
        response = client.post("/agent/batch", json=long, headers=headers)
        assert_json_error(response, 413, "message_too_long")


# --- what is not hostile ---------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id", ["john.doe@example.com", "...a", "a.", "-", "_", "@", "A" * 128]
)
def test_unusual_valid_user_ids_work_end_to_end(client: httpx.Client, user_id: str) -> None:
    """Ids with dots once broke the user-facts store (a 500); only dots-only ids are refused."""
    answer = client.post("/chat", json={"message": "I'm Ada. Weather in Oslo?", "userId": user_id})
    assert answer.status_code == 200, answer.text
    agent = client.post(
        "/agent/invoke", json={"input": human("and tomorrow?")}, headers={"X-User-Id": user_id}
    )
    assert agent.status_code == 200, agent.text
    path = f"/sessions/{encoded(user_id)}"
    listing = client.get(path).json()
    assert listing["userId"] == user_id
    assert listing["sessions"][0]["conversationCount"] == 2
    assert client.post(f"{path}/end").json()["endedSessions"] == [answer.json()["sessionId"]]


def test_hostile_message_content_is_just_text(client: httpx.Client) -> None:
    """Emoji, NUL and control characters in a message are data: answered, kept verbatim."""
    user = new_user()
    text = "😀 null\x00byte, escape \x1b[31m, tab\t, RTL \u202e, zero-width \u200b"
    response = client.post("/chat", json={"message": text, "userId": user})
    assert response.status_code == 200, response.text
    history = client.get(f"/sessions/{user}/history").json()["messages"]
    assert history[0] == {**history[0], "role": "user", "content": text}
