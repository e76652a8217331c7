"""Fixtures for the agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.openai_stub import OpenAIStub


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A local OpenAI-compatible server on 127.0.0.1 (free port), stopped after the test."""
    with OpenAIStub() as stub:
        yield stub
