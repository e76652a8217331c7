"""Access control: `AUTH_MODE=token` requires `Authorization: Bearer <token>` on every route.

A token names one user (or an admin) and is signed with HMAC-SHA256 under `AUTH_SECRET`:
`wa1.<user|admin>.<user id>.<expiry, epoch s>.<signature>`. Mint them with
`weather-agent token USER_ID [--admin] [--days N]`. A user token may only touch that user's
sessions (LangServe routes included: the user id comes from the token, not the request);
`/system/*`, `/metrics` and other users' sessions need an admin token. `/health` and
`/ready` stay open for probes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from server.responses import error_response
from session_policy.ids import InvalidIdError, validate_user_id

VERSION = "wa1"
OPEN_PATHS = frozenset({"/health", "/ready"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, or an admin (who may act for any user)."""

    user_id: str | None
    admin: bool = False

    def may_act_for(self, user_id: str) -> bool:
        return self.admin or self.user_id == user_id


ANONYMOUS_ADMIN = Principal(user_id=None, admin=True)  # AUTH_MODE=none: no checks


def _signature(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(secret: str, user_id: str | None, *, admin: bool = False, days: float = 30) -> str:
    kind, subject = ("admin", "-") if admin else ("user", validate_user_id(user_id))
    payload = f"{VERSION}.{kind}.{subject}.{int(time.time() + days * 86_400)}"
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: str, token: str, now: float | None = None) -> Principal | None:
    """The principal a valid, unexpired token names; None otherwise."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != VERSION or parts[1] not in ("user", "admin"):
        return None
    payload, signature = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        return None
    if not parts[3].isdigit() or int(parts[3]) < (now or time.time()):
        return None
    if parts[1] == "admin":
        return Principal(user_id=None, admin=True)
    try:
        return Principal(user_id=validate_user_id(parts[2]))
    except InvalidIdError:
        return None


class TokenAuth:
    """ASGI middleware: a valid bearer token on every route but the probes."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        principal = verify(self.secret, token.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            response = error_response(401, "a valid 'Authorization: Bearer <token>' is required")
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def principal_of(request: Request) -> Principal:
    return getattr(request.state, "principal", ANONYMOUS_ADMIN)


def authorize(request: Request, user_id: str) -> None:
    """403 unless the caller may act for `user_id`."""
    if not principal_of(request).may_act_for(user_id):
        raise HTTPException(403, f"this token may not act for user {user_id!r}")


def acting_user(request: Request, user_id: str | None, default: str) -> str:
    """Who a request acts for when it may leave its user out (the original API's `/chat`).

    Named: that user, if the caller may act for them (403 otherwise). Unnamed: the token's
    user in AUTH_MODE=token, `default` with AUTH_MODE=none; an admin token names no user,
    so it must say which (422).
    """
    if user_id is not None:
        authorize(request, user_id)
        return user_id
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # AUTH_MODE=none
        return default
    if principal.user_id is None:
        raise HTTPException(422, "userId: required with an admin token (it names no user)")
    return principal.user_id


def require_admin(request: Request) -> None:
    if not principal_of(request).admin:
        raise HTTPException(403, "an admin token is required")
