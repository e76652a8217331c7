"""Every error is JSON `{"error": {"code", "message"}}` with the right status, never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from session_policy.ids import InvalidIdError
from session_policy.manager import SessionBusyError

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_response(status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code or CODES.get(status, "error"), "message": message}},
    )


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
    from server.limits import MessageTooLongError, RateLimitedError  # limits imports us

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

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; see the server log")
