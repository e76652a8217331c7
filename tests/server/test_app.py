"""The app in-process (no Redis configured: sessions live in memory, status degraded)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import load_settings


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = load_settings(model="offline", weather_provider="simulated", redis_url=None)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_health(client: TestClient) -> None:
    # The original API's body (its `status` value "healthy" replaced our "ok"; see README).
    body = client.get("/health").json()
    assert set(body) == {"status", "timestamp", "features"}
    assert body["status"] == "healthy"
    assert body["timestamp"].endswith("Z")
    features = {"langchain": False, "redis": False, "weatherAPI": False, "sessionManagement": True}
    assert body["features"] == features


def test_invoke_the_agent_in_memory(client: TestClient) -> None:
    response = client.post(
        "/agent/invoke",
        json={"input": {"messages": [{"type": "human", "content": "Weather in London?"}]}},
    )
    assert response.status_code == 200
    answer = response.json()["output"]
    assert "London, United Kingdom" in answer["content"]
    session = answer["response_metadata"]["session"]
    assert (session["userId"], session["storage"]) == ("playground", "memory")
    assert client.get("/system/status").json()["status"] == "degraded"


def test_playground_page(client: TestClient) -> None:
    response = client.get("/agent/playground/")
    assert response.status_code == 200
    assert "<!DOCTYPE html>" in response.text
