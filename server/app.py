"""The FastAPI application factory: LangServe routes for the agent plus our own routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from langserve import add_routes

from server import errors
from server.agent_runnable import SessionAgent, session_identity
from server.auth import TokenAuth
from server.config import Settings, load_settings
from server.limits import BodySizeLimit
from server.logs import setup_logging
from server.routes import chat, sessions, system
from server.service import VERSION, Service, start_service
from session_policy.manager import SessionManager

DESCRIPTION = """
A LangGraph weather agent whose conversation memory lives in Redis, one thread per
session. Sessions end on time, inactivity, a conversation limit, an API call or shutdown;
their data then leaves Redis at once and a short record stays.

* `/agent/*`: the agent through LangServe (invoke, stream, stream_events, playground).
  The user comes from the `X-User-Id` header or `configurable.user_id`.
* `/chat`: one message in the user's session, as JSON or server-sent events.
* `/sessions/{userId}...`: sessions, history, ending them.
* `/system/*`, `/health`, `/ready`: for operators.
"""


def create_app(settings: Settings | None = None, **service_overrides: Any) -> FastAPI:
    """A new app. The service (Redis, sessions, cleanup) starts with the app's lifespan.

    `service_overrides` (e.g. `model=`, `weather=`) replace what settings would build.
    """
    settings = settings or load_settings()
    if not logging.getLogger().handlers:  # a uvicorn worker process: nobody set logs up yet
        setup_logging(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await start_service(settings, **service_overrides)
        app.state.service = service
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Weather agent", version=VERSION, description=DESCRIPTION, lifespan=lifespan
    )
    errors.install(app)

    def manager() -> SessionManager:
        service: Service = app.state.service
        return service.manager

    def admit(user_id: str, message: str) -> None:
        service: Service = app.state.service
        service.admit(user_id, message)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.auth_mode == "token" and settings.auth_secret is not None:
        # Added last, so it runs first: no body is read for a caller without a valid token.
        app.add_middleware(TokenAuth, secret=settings.auth_secret.get_secret_value())
    add_routes(
        app,
        SessionAgent(manager, admit),
        path="/agent",
        playground_type="chat",
        per_req_config_modifier=session_identity,
        enable_feedback_endpoint=False,
        enable_public_trace_link_endpoint=False,
    )
    app.include_router(chat.router)
    app.include_router(sessions.router)
    app.include_router(system.router)
    app.include_router(system.probes)
    return app
