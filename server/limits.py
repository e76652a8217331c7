"""Limits against abuse: message length, request body size, and a per-user rate limit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.responses import error_response


class MessageTooLongError(ValueError):
    """A message over MAX_MESSAGE_CHARS (the API answers 413)."""


class RateLimitedError(RuntimeError):
    """Too many messages from one user (the API answers 429 with Retry-After)."""

    def __init__(self, user_id: str, retry_after_s: int) -> None:
        super().__init__(f"too many messages from {user_id!r}: retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def check_message(message: str, max_chars: int) -> None:
    if len(message) > max_chars:
        raise MessageTooLongError(
            f"message is {len(message)} characters; at most {max_chars} are accepted"
        )


class RateLimiter:
    """A fixed one-minute window per user, kept in this process.

    Each process counts on its own, so with N processes a user can send up to N times the
    limit; that bounds abuse without a Redis round trip on every message.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def check(self, user_id: str) -> None:
        if self.per_minute <= 0:
            return
        now = self.clock()
        start, count = self._windows.get(user_id, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        if count >= self.per_minute:
            raise RateLimitedError(user_id, max(1, math.ceil(60 - (now - start))))
        self._windows[user_id] = (start, count + 1)
        if len(self._windows) > 100_000:  # forget idle users so the table stays small
            self._windows = {u: w for u, w in self._windows.items() if now - w[0] < 60}


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, streamed or not."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLargeError(self.max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLargeError:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, _TooLargeError(self.max_bytes).detail)
        await response(scope, receive, send)


class _TooLargeError(HTTPException):
    """An HTTPException, so FastAPI passes it on while reading a body (it turns any other
    error there into a 400) and the app's handler answers 413; else caught above."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes} bytes")
