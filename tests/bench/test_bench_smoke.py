"""Smoke run of the benchmark (`python -m bench --quick`): every section, the JSON.

Only that it runs and reports: no timing is asserted (the targets are for the real run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server_process import ROOT

pytestmark = pytest.mark.integration

SECTIONS = ("turn", "bytes", "cleanup", "http")


def test_quick_run_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for heading in ("1. Turn overhead", "2. Bytes per session", "3. Cleanup", "4. HTTP"):
        assert heading in run.stdout
    assert "Targets" in run.stdout

    data = json.loads(out.read_text())
    assert data["quick"] is True
    environment = data["environment"]
    assert environment["cores"] >= 1
    assert environment["cpu_model"]
    assert environment["redis_server"]["version"]
    for package in ("langgraph", "langgraph-checkpoint-redis", "redis"):
        assert environment["packages"][package]
    assert set(data["sections"]) == set(SECTIONS)
    for name in SECTIONS:
        section = data["sections"][name]
        assert section["rows"], name
        assert section["targets"], name
        for target in section["targets"]:
            assert target["section"] == name
            assert isinstance(target["passed"], bool)
            assert target["measured"] == target["measured"], target  # not NaN
    assert len(data["targets"]) == data["passed"] + data["missed"]

    turn = data["sections"]["turn"]["figures"]
    for level in ("echo", "agent", "manager"):
        assert {"memory", "ours", "ours-cached", "stock", "shallow"} <= set(turn[level])
    # the ablation rows: what the in-process cache left out of the service would buy
    assert "Ablation rows" in run.stdout
    for name in ("turn", "bytes"):
        assert data["sections"][name]["ablations"], name
    held = data["sections"]["bytes"]["figures"]["cached"]["points"]
    assert all(p["held_in_process_bytes"] > 0 for p in held)
    points = data["sections"]["bytes"]["figures"]["ours"]["points"]
    assert [p["turns"] for p in points] == [2, 4]
    cleanup = data["sections"]["cleanup"]["figures"]
    assert cleanup["ended"] == cleanup["sessions"] > 0
    http = data["sections"]["http"]["figures"]
    for kind in ("redis", "memory"):
        assert http["phases"][kind][0]["turns_ok"] > 0
        assert http["lone"][kind]["server_ms"]
