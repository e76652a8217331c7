"""The README's configuration table stays in step with the settings the code reads."""

from __future__ import annotations

from pathlib import Path

from agent import AgentSettings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        name.upper() for name in AgentSettings.model_fields if f"| `{name.upper()}` |" not in README
    ]
    assert missing == []


def test_quick_start_names_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README
