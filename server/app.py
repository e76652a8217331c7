"""The FastAPI application factory: LangServe routes for the agent plus our own routes."""

from __future__ import annotations

from fastapi import FastAPI
from langserve import add_routes

from agent import AgentSettings, build_graph


def create_app(settings: AgentSettings | None = None) -> FastAPI:
    """A new app serving the agent at `/agent` (invoke, stream, playground, ...)."""
    settings = settings or AgentSettings()
    app = FastAPI(
        title="Weather agent",
        version="0.1.0",
        description="A LangGraph weather agent with session-bounded memory.",
    )
    add_routes(app, build_graph(settings=settings), path="/agent")

    @app.get("/health", tags=["system"])
    async def health() -> dict[str, str]:
        """Liveness: the process is up."""
        return {"status": "ok"}

    return app
