"""Every error is JSON `{"error": {"code", "message"}}` with the right status, never a trace.

Redis failures that mean "not now" (`session_policy.redis_errors`) that reach a route are
`503 storage_unavailable`; any other unexpected error is a `500`. Nothing escapes the app:
`CatchAll` turns what no handler took into that JSON 500 without re-raising it, so the
server keeps the client's connection open for its next request.
"""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.limits import MessageTooLongError, RateLimitedError
from server.responses import error_response
from session_policy.ids import InvalidIdError
from session_policy.manager import SessionBusyError
from session_policy.storage import Storage, StorageUnavailableError

log = logging.getLogger(__name__)


def _describe(error: RequestValidationError) -> str:
    problems = []
    for problem in error.errors():
        if not isinstance(problem, dict):  # LangServe raises it with plain strings
            problems.append(f"body: {problem}")
            continue
        if problem.get("type") == "json_invalid":  # loc is ("body", character position)
            reason = problem.get("ctx", {}).get("error", "")
            problems.append(f"body: invalid JSON at character {problem['loc'][-1]}: {reason}")
            continue
        where = ".".join(str(p) for p in problem["loc"] if p not in ("body", "path", "query"))
        message = str(problem["msg"]).removeprefix("Value error, ")
        problems.append(f"{where or 'body'}: {message}")
    return "; ".join(problems)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, _describe(error))

    @app.exception_handler(InvalidIdError)
    async def invalid_id(request: Request, error: InvalidIdError) -> JSONResponse:
        return error_response(400, str(error), "invalid_id")

    @app.exception_handler(SessionBusyError)
    async def busy(request: Request, error: SessionBusyError) -> JSONResponse:
        return error_response(409, str(error), "busy")

    @app.exception_handler(MessageTooLongError)
    async def too_long(request: Request, error: MessageTooLongError) -> JSONResponse:
        return error_response(413, str(error), "message_too_long")

    @app.exception_handler(RateLimitedError)
    async def rate_limited(request: Request, error: RateLimitedError) -> JSONResponse:
        response = error_response(429, str(error))
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.exception_handler(StorageUnavailableError)
    async def storage_unavailable(request: Request, error: StorageUnavailableError) -> JSONResponse:
        return error_response(503, str(error), "storage_unavailable")

    @app.exception_handler(redis.RedisError)
    async def redis_failed(request: Request, error: redis.RedisError) -> JSONResponse:
        storage: Storage = request.app.state.service.storage
        if storage.unavailable(error):
            message = f"{storage.reason}; try again shortly"
            return error_response(503, message, "storage_unavailable")
        log.error("Redis error on %s %s", request.method, request.url.path, exc_info=error)
        return error_response(500, INTERNAL)


INTERNAL = "internal error; see the server log"


class CatchAll:
    """Outermost middleware: what no handler took becomes a JSON 500, logged once.

    Starlette's last-resort handler answers and then re-raises, and uvicorn closes the
    connection of a request whose app raised: the client's next request on that kept-alive
    connection failed. Here the error ends with this request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def tracked(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await error_response(500, INTERNAL)(scope, receive, send)
            elif not finished:  # a stream cut short: end its body so the connection lives on
                await send({"type": "http.response.body", "body": b"", "more_body": False})
