"""FastAPI dependencies: the running service and validated path parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from server.auth import authorize
from server.schemas import USER_ID_DESCRIPTION, UserId
from server.service import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
UserIdPath = Annotated[UserId, Path(description=USER_ID_DESCRIPTION, examples=["user123"])]


def authorized_user(userId: UserIdPath, request: Request) -> str:
    """The path's user id, if the caller may act for that user (403 otherwise)."""
    authorize(request, userId)
    return userId


AuthorizedUser = Annotated[str, Depends(authorized_user)]
