"""`weather-agent serve`, as the HTTP benchmark starts it: `python -m bench.serve`.

The same app (`server.app:create_app`) and the same `uvicorn.run` arguments as
`server.cli serve`, plus a longer `timeout_worker_healthcheck`: with `--workers N`,
uvicorn's supervisor kills a worker that does not answer its health check within 5 s, and
a spawned worker first re-imports the `__main__` module (for `server.cli`: langchain,
langgraph, langserve... ~10 s on a busy 2-core machine), so they are killed in a loop.
This module imports little, so its workers answer at once, and waits longer anyway.
REDIS_URL must be set (no embedded Redis here).
"""

from __future__ import annotations

import argparse
import os

import uvicorn

HEALTHCHECK_TIMEOUT_S = 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench.serve needs REDIS_URL")
    from server.config import load_settings  # light imports only (see the docstring)
    from server.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.log_format, settings.log_level)
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT_S,
    )


if __name__ == "__main__":
    main()
