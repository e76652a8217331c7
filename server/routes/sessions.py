"""`/sessions/{userId}...`: a user's sessions, their history, and ending them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from server.deps import AuthorizedUser, ServiceDep
from server.schemas import (
    EndRequest,
    EndResponse,
    ErrorResponse,
    HistoryResponse,
    SessionHistoryResponse,
    SessionsResponse,
)
from session_policy.ids import session_belongs_to
from session_policy.models import Session
from session_policy.transcript import interactions, text_messages

router = APIRouter(
    prefix="/sessions",
    tags=["sessions"],
    responses={
        422: {"model": ErrorResponse},
        503: {
            "model": ErrorResponse,
            "description": "Redis holds these sessions but can't do this now (it refuses writes, "
            "or stopped answering); the message says why.",
        },
    },
)

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items.")]


async def session_messages(service: ServiceDep, session: Session, limit: int) -> list[Any]:
    """The session's last `limit` user and assistant messages, oldest first."""
    graph = service.manager.graph(service.storage.backing(session.backend))
    state = await graph.aget_state({"configurable": {"thread_id": session.session_id}})
    return text_messages(state.values.get("messages", []), limit)


def _listed(messages: list[dict[str, Any]], session_id: str) -> dict[str, Any]:
    """The original API's `history` and `count` beside our `messages`."""
    history = interactions(messages, session_id)
    return {"history": history, "count": len(history)}


@router.get("/{userId}", response_model=SessionsResponse)
async def active_sessions(userId: AuthorizedUser, service: ServiceDep) -> Any:
    """The user's active session (at most one), with when and why it will end."""
    sessions = await service.manager.active_sessions(userId)
    now = service.manager.clock_ms()
    return {
        "userId": userId,
        "activeSessions": len(sessions),
        "sessions": [s.to_api(now) for s in sessions],
    }


@router.get("/{userId}/history", response_model=HistoryResponse)
async def history(userId: AuthorizedUser, service: ServiceDep, limit: Limit = 100) -> Any:
    """The current session's messages and the user's ended-session records."""
    sessions = await service.manager.active_sessions(userId)
    current = sessions[0] if sessions else None
    ended = await service.manager.ended_sessions(userId, limit)
    messages = await session_messages(service, current, limit) if current else []
    return {
        "userId": userId,
        "sessionId": current.session_id if current else None,
        "messages": messages,
        "endedSessions": [r.to_api() for r in ended],
        **_listed(messages, current.session_id if current else ""),
    }


@router.get(
    "/{userId}/history/{sessionId}",
    response_model=SessionHistoryResponse,
    responses={404: {"model": ErrorResponse}},
)
async def session_history(
    userId: AuthorizedUser,
    sessionId: str,
    service: ServiceDep,
    limit: Limit = 100,
) -> Any:
    """One session of this user: its messages while active, its record once ended."""
    if not session_belongs_to(sessionId, userId):
        raise HTTPException(404, f"no session {sessionId[:80]!r} for user {userId!r}")
    for session in await service.manager.active_sessions(userId):
        if session.session_id == sessionId:
            messages = await session_messages(service, session, limit)
            return {
                "userId": userId,
                "sessionId": sessionId,
                "status": "active",
                "messages": messages,
                "record": None,
                **_listed(messages, sessionId),
            }
    record = await service.manager.ended_record(sessionId)
    if record is None:
        raise HTTPException(404, f"no session {sessionId[:80]!r} for user {userId!r}")
    return {
        "userId": userId,
        "sessionId": sessionId,
        "status": "ended",
        "messages": [],
        "record": record.to_api(),
        **_listed([], sessionId),
    }


@router.post(
    "/{userId}/end",
    response_model=EndResponse,
    responses={400: {"model": ErrorResponse, "description": "The body is not UTF-8 JSON."}},
)
async def end_sessions(
    userId: AuthorizedUser,
    service: ServiceDep,
    body: EndRequest | None = None,
) -> Any:
    """End the user's sessions now (recorded with end reason `manual`); the data is gone
    when this returns."""
    reason = body.reason if body else "manual"
    ended = await service.manager.end_user_sessions(userId, "manual")
    return {
        "userId": userId,
        "endedSessions": ended,
        "reason": reason,
        "message": f"All sessions ended for user {userId}",
    }
