"""The app factory serves the agent through LangServe."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from agent import AgentSettings
from server.app import create_app


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(AgentSettings(model="offline", weather_provider="simulated")))


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_invoke_the_agent(client: TestClient) -> None:
    response = client.post(
        "/agent/invoke",
        json={"input": {"messages": [{"type": "human", "content": "Weather in London?"}]}},
    )
    assert response.status_code == 200
    answer = response.json()["output"]["messages"][-1]
    assert answer["type"] == "ai"
    assert "London, United Kingdom" in answer["content"]


def test_playground_page(client: TestClient) -> None:
    response = client.get("/agent/playground/")
    assert response.status_code == 200
    assert "<!DOCTYPE html>" in response.text
