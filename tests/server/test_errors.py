"""Errors become JSON with the right status, and nothing escapes the app.

A small app with the service's error handling and routes that fail on purpose; httpx's ASGI
transport re-raises whatever escapes an app, so a passing test means nothing did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from server import errors
from session_policy.config import SessionSettings
from session_policy.redis_server import free_port
from session_policy.storage import Storage, StorageUnavailableError
from tests.session_policy.test_redis_errors import reply as redis_reply


@pytest.fixture
def storage() -> Storage:
    return Storage(SessionSettings(), f"redis://127.0.0.1:{free_port()}/0")  # nothing there


@pytest.fixture
async def http(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    errors.install(app)
    app.add_middleware(errors.CatchAll)
    app.state.service = SimpleNamespace(storage=storage)

    @app.get("/bug")
    async def bug() -> None:
        raise KeyError("conversationCount")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first part\n"
            raise RuntimeError("failed half-way")

        return StreamingResponse(body())

    @app.get("/reply/{text}")
    async def reply(text: str) -> None:
        raise redis_reply(text)

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise StorageUnavailableError("Redis refuses writes: READONLY: could not end it now")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client
    await storage.close()


async def test_an_unexpected_error_is_a_json_500(http: httpx.AsyncClient) -> None:
    response = await http.get("/bug")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "conversationCount" not in response.text  # no internals, no trace


async def test_a_stream_that_fails_is_ended_not_raised(http: httpx.AsyncClient) -> None:
    response = await http.get("/stream")
    assert response.status_code == 200  # the headers were out already
    assert response.text == "first part\n"


async def test_redis_refusing_is_a_503_and_degrades(
    http: httpx.AsyncClient, storage: Storage
) -> None:
    storage.mode = "redis"
    response = await http.get("/reply/OOM command not allowed when used memory")
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "storage_unavailable"
    assert "OOM" in body["message"]
    assert (storage.status, storage.problem_kind) == ("degraded", "OOM")


async def test_a_redis_error_of_ours_stays_a_500(http: httpx.AsyncClient, storage: Storage) -> None:
    storage.mode = "redis"
    response = await http.get("/reply/WRONGTYPE Operation against a key")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert storage.status == "ok"  # a bug does not switch storage


async def test_storage_unavailable_is_a_503(http: httpx.AsyncClient) -> None:
    response = await http.get("/unavailable")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "storage_unavailable",
        "message": "Redis refuses writes: READONLY: could not end it now",
    }
