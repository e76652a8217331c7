"""`Server-Timing` on every response: how long the server took before it started answering.

`Server-Timing: app;dur=7.42` (milliseconds, from the request reaching the app to the start
of its response; for a stream, to its first byte). Browsers show it in their developer
tools; the HTTP benchmark reads it to tell server time from the client's round trip.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"server-timing"


class ServerTiming:
    """Pure ASGI middleware (no body buffering): adds the header to `http.response.start`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                duration_ms = (time.perf_counter() - started) * 1000
                headers = [*message.get("headers", []), (HEADER, b"app;dur=%.2f" % duration_ms)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)


def parse(value: str | None) -> float | None:
    """The `app` duration (ms) of a `Server-Timing` header value, if there is one."""
    for metric in (value or "").split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        if name == "app":
            for param in params:
                key, _, number = param.partition("=")
                if key == "dur":
                    try:
                        return float(number)
                    except ValueError:
                        return None
    return None
