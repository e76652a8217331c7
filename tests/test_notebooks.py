"""The notebooks run top to bottom, offline, in the project's own Python, and show what they say.

Each notebook is executed fresh with nbclient (kernel `python3`, which jupyter_client starts
with the interpreter running the tests, i.e. the project's venv), from the notebooks folder.
The executed copies are saved in `test-artifacts/notebooks/` for inspection, failed or not.
The notebooks themselves are kept in git without outputs.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts" / "notebooks"
CELL_TIMEOUT_S = 120
NOTEBOOK_FILES = ["01_quickstart.ipynb", "02_sessions.ipynb"]
END_REASONS = ["conversation_limit", "inactivity", "duration", "manual", "shutdown"]

# nbformat has no type annotations: typed names for the few functions used here.
read_notebook: Callable[..., NotebookNode] = nbformat.read
write_notebook: Callable[..., None] = nbformat.write
new_notebook: Callable[..., NotebookNode] = nbformat.v4.new_notebook
new_code_cell: Callable[..., NotebookNode] = nbformat.v4.new_code_cell


def execute(nb: NotebookNode, name: str) -> NotebookNode:
    """Run every cell in a fresh `python3` kernel; save the executed copy whatever happens."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    started = time.perf_counter()
    try:
        client.execute()
    finally:
        nb.metadata["test_run_seconds"] = round(time.perf_counter() - started, 1)
        write_notebook(nb, ARTIFACTS / name)
    return nb


def run_notebook(name: str) -> NotebookNode:
    return execute(read_notebook(NOTEBOOKS / name, as_version=4), name)


def cell_of(nb: NotebookNode, cell_id: str) -> NotebookNode:
    cells: list[NotebookNode] = [cell for cell in nb.cells if cell.get("id") == cell_id]
    assert len(cells) == 1, f"{len(cells)} cells with id {cell_id!r}"
    return cells[0]


def cell_text(nb: NotebookNode, cell_id: str) -> str:
    """The text a code cell showed: its streams and the plain-text form of its results."""
    parts: list[str] = []
    for output in cell_of(nb, cell_id).outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


@pytest.mark.parametrize("name", NOTEBOOK_FILES)
def test_notebooks_are_stored_without_outputs(name: str) -> None:
    nb = read_notebook(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert [
        (c.id, c.execution_count, c.outputs) for c in code if c.execution_count or c.outputs
    ] == []


def test_the_python3_kernel_is_the_project_python() -> None:
    nb = new_notebook()
    nb.cells.append(
        new_code_cell(
            "import sys, agent\nprint(sys.executable)\nprint(sys.prefix)\nprint(agent.__file__)",
            id="which-python",
        )
    )
    executable, prefix, agent_file = (
        cell_text(execute(nb, "kernel_check.ipynb"), "which-python").strip().splitlines()
    )
    assert Path(executable) == Path(sys.executable)
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
    assert Path(agent_file).resolve().is_relative_to(ROOT)  # this checkout, not another install


def test_quickstart_notebook() -> None:
    nb = run_notebook("01_quickstart.ipynb")

    assert "model -> tools" in cell_text(nb, "build")
    london = cell_text(nb, "invoke")
    assert london.startswith("Right now in London, United Kingdom it's ")
    assert "Simulated weather" in london
    assert "get_current_weather" in cell_text(nb, "messages")
    assert cell_text(nb, "follow-up").startswith("Tomorrow in London, United Kingdom: ")

    streamed = cell_text(nb, "stream")
    assert streamed.startswith('[calling get_weather_forecast {"location": "Paris"')
    assert "Tomorrow in Paris, France: " in streamed
    chunks = re.search(r"\((\d+) chunks streamed\)", streamed)
    assert chunks is not None
    assert int(chunks[1]) > 10  # token by token, not one piece

    state = cell_text(nb, "state")
    assert "12 messages:" in state
    assert "next: ()" in state
    assert re.search(r"checkpoint id: [0-9a-f-]{36}", state)
    assert "15 checkpoints in this thread" in cell_text(nb, "history")

    memory = cell_text(nb, "memory")
    assert "Your name is Alice." in memory
    assert "I don't know your name yet." in memory  # another thread


class Memory(NamedTuple):
    """One row of the table the sessions notebook prints after cleanup (bytes)."""

    used: int  # Redis used_memory
    sessions: int  # keys other than ended-session records: the sessions mostly
    records: int  # ended-session records


def memory_table(text: str) -> dict[str, Memory]:
    rows = re.findall(r"^([a-z ]+):\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", text, flags=re.M)
    table = {label: Memory(*(int(n.replace(",", "")) for n in numbers)) for label, *numbers in rows}
    assert set(table) == {"baseline", "peak", "after cleanup", "after records expire"}, text
    return table


def test_sessions_notebook() -> None:
    nb = run_notebook("02_sessions.ipynb")

    assert "storage: redis" in cell_text(nb, "wiring")
    active_keys = cell_text(nb, "limit-1")
    assert re.search(
        r"'wa:\{\d+\}:session:alice:\d+:meta',\s+'wa:\{\d+\}:session:alice:\d+:thread'",
        active_keys,
    )

    # Every end reason happens, and each time the session's keys are gone at once.
    for cell_id, reason in [
        ("limit-2", "conversation_limit"),
        ("inactivity", "inactivity"),
        ("duration", "duration"),
        ("manual", "manual"),
        ("shutdown", "shutdown"),
    ]:
        text = cell_text(nb, cell_id)
        assert f"'endReason': '{reason}'" in text, (cell_id, text)
        assert "keys left: []" in text, (cell_id, text)
    assert "ended (conversation_limit)" in cell_text(nb, "limit-2")  # the reply still came
    assert "Which place" in cell_text(nb, "duration")  # answered in a new session

    name = cell_text(nb, "name")
    assert "Your name is Alice." in name
    assert "new session: True" in name
    records = cell_text(nb, "records")
    for reason in END_REASONS[:4]:
        assert reason in records
    by_reason = dict(re.findall(r"^  (\w+) +(\d+)$", cell_text(nb, "shutdown"), flags=re.M))
    assert set(by_reason) == set(END_REASONS)
    assert all(int(count) >= 1 for count in by_reason.values()), by_reason

    # Memory: up while 200 users chat, bounded, and back down once their sessions ended.
    load = cell_text(nb, "load")
    assert "of 200 users" in load
    most_active = re.search(r"active sessions at most (\d+)", load)
    assert most_active is not None
    assert int(most_active[1]) < 60  # sessions end as fast as users arrive
    per_batch = [int(kib) for kib in load.strip().splitlines()[-1].split()]
    assert len(per_batch) == 23  # the start and 22 batches
    plateau = per_batch[6:21]  # the first sessions have ended; users still arrive
    assert max(plateau) <= min(plateau) * 1.2, per_batch  # bounded, not growing with users

    cleanup = cell_text(nb, "cleanup")
    assert "cleanup ended" in cleanup
    table = memory_table(cleanup)
    base, peak = table["baseline"], table["peak"]
    after, expired = table["after cleanup"], table["after records expire"]
    # The sessions' keys: gone to the byte (the statistics hash may grow by a digit).
    assert peak.sessions > base.sessions + 50_000
    assert abs(after.sessions - base.sessions) <= 64, table
    # What remains are the 200 records (kept by design for SESSION_HISTORY_RETENTION).
    assert 200 * 100 <= after.records - base.records <= 200 * 1000, table
    assert expired.records == base.records
    # used_memory also holds what Redis grew for the peak (connection buffers, internal
    # tables; reused by a second run, not added to), so it comes back less precisely.
    assert base.used < peak.used
    assert after.used < peak.used
    assert expired.used <= after.used
    assert expired.used <= base.used * 1.15, table

    plot = cell_of(nb, "plot").outputs
    assert any("image/png" in output.get("data", {}) for output in plot)
    assert "Redis running: False" in cell_text(nb, "stop")
