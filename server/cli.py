"""The `weather-agent` command line."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

cli = typer.Typer(help="Weather agent with session-bounded memory.", no_args_is_help=True)


@cli.callback()
def _root() -> None:
    """Weather agent with session-bounded memory."""


@cli.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart when code changes.")] = False,
) -> None:
    """Serve the agent over HTTP (LangServe at /agent, playground at /agent/playground/)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    typer.echo(f"Playground: http://{host}:{port}/agent/playground/")
    uvicorn.run("server.app:create_app", factory=True, host=host, port=port, reload=reload)


def main() -> None:
    cli()
