"""Cross-origin calls from web pages (CORS), as the original's `app.use(cors())` allowed.

`CORS_ORIGINS` names the origins (see `Settings.allowed_origins`): any by default with
AUTH_MODE=none, only those named with AUTH_MODE=token. Credentials are never allowed: a
token travels in the `Authorization` header a page sets itself, never in a cookie.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

# Headers a page may read: timing, rate-limit back-off, and the deprecation notice.
EXPOSED = ["Server-Timing", "Retry-After", "Deprecation", "Link"]


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Add CORS; call it last, so it is outermost and answers preflights before any check
    (a preflight carries no token)."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Accept", "X-User-Id"],
        expose_headers=EXPOSED,
        max_age=600,
    )
