"""The README stays true: every setting documented, and its curl examples work as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import Settings
from tests.server_process import ServerProcess

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        name.upper() for name in Settings.model_fields if f"| `{name.upper()}` |" not in README
    ]
    assert missing == []


def test_quick_start_names_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README


def curl_examples() -> list[str]:
    """The curl commands of the README's bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        joined = block.replace("\\\n", " ")
        commands += [line.strip() for line in joined.splitlines() if line.startswith("curl ")]
    return commands


@pytest.mark.parametrize(
    "code", re.findall(r"```python\n(.*?)```", README, flags=re.S), ids=lambda c: c[:40]
)
def test_python_examples_run(code: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MODEL")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # no .env of the developer's
        env={**env, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_curl_examples_work(server: ServerProcess) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not installed (.ci/run installs it)")
    examples = curl_examples()
    assert len(examples) >= 8
    for command in examples:
        argv = shlex.split(command.replace("http://127.0.0.1:8000", server.url))
        done = subprocess.run(
            [curl, "--fail-with-body", "--max-time", "30", *argv[1:]],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert done.stdout.strip(), command
