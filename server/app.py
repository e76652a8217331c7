"""The FastAPI application factory: LangServe routes for the agent plus our own routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from langserve import add_routes

from server import errors
from server.agent_runnable import SessionAgent, admitting_identity, json_body
from server.auth import TokenAuth
from server.config import Settings, load_settings
from server.cors import install_cors
from server.limits import BodySizeLimit
from server.logs import setup_logging
from server.routes import chat, legacy, sessions, system
from server.service import VERSION, Service, start_service
from server.timing import ServerTiming
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
        # Added after the body limit, so it runs before: no body is read for a caller
        # without a valid token.
        app.add_middleware(TokenAuth, secret=settings.auth_secret.get_secret_value())
    app.add_middleware(ServerTiming)  # its time includes the checks above
    app.add_middleware(errors.CatchAll)  # nothing escapes the app
    # Outside CatchAll, so a 500 carries CORS headers too (a page can read it); CORS
    # answers preflights itself and raises nothing.
    install_cors(app, settings.allowed_origins)
    add_routes(
        app,
        SessionAgent(manager, admit),
        path="/agent",
        playground_type="chat",
        per_req_config_modifier=admitting_identity(admit),
        enable_feedback_endpoint=False,
        enable_public_trace_link_endpoint=False,
        dependencies=[Depends(json_body)],
    )
    _document_agent_errors(app)
    app.include_router(chat.router)
    app.include_router(sessions.router)
    app.include_router(system.router)
    app.include_router(system.probes)
    app.include_router(legacy.router)
    return app


def _error(description: str) -> dict[str, Any]:
    # ErrorResponse is in the schema's components: our own routes use it as a model.
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


AGENT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("`X-User-Id` is not a valid user id, the body is not UTF-8, or bad config hash."),
    422: _error("The body does not match the schema (`configurable.user_id` included)."),
}
ANSWERING_ERRORS: dict[int | str, dict[str, Any]] = {
    409: _error("Another message of this user is being answered."),
    413: _error("Message over MAX_MESSAGE_CHARS, or body over MAX_BODY_BYTES."),
    429: _error("Over RATE_LIMIT_PER_MINUTE; see Retry-After."),
}


def _document_agent_errors(app: FastAPI) -> None:
    """LangServe documents only 200 and FastAPI's `{"detail"}` 422; its routes answer errors
    like ours (`{"error": {"code", "message"}}`), with these statuses."""
    streaming = ("/stream", "/stream_log", "/stream_events")
    answering = ("/invoke", "/batch", *streaming)
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/agent/"):
            extra = ANSWERING_ERRORS if route.path.endswith(answering) else {}
            route.responses = {**route.responses, **AGENT_ERRORS, **extra}
            if route.path.endswith(streaming):  # LangServe documents them as JSON
                route.responses[200] = {"content": {"text/event-stream": {}}}
