"""The original Node.js service's `GET /history/{userId}`, kept for its clients (deprecated).

It answers as the original did, `{history: [{timestamp, message, response, sessionId}],
userId}` (the current session's last conversations, 10 by default), and points to its
successor, `GET /sessions/{userId}/history`, with a `Deprecation` header (RFC 9745) and a
`Link` header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from server.deps import AuthorizedUser, ServiceDep
from server.routes.sessions import session_messages
from server.schemas import ErrorResponse, LegacyHistoryResponse
from session_policy.transcript import interactions

# When this route was deprecated, in RFC 9745's form: `Deprecation: @<epoch seconds>`.
DEPRECATED_SINCE = int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())

router = APIRouter(tags=["deprecated"], responses={422: {"model": ErrorResponse}})

TurnLimit = Annotated[int, Query(ge=1, le=500, description="At most this many conversations.")]


@router.get(
    "/history/{userId}",
    response_model=LegacyHistoryResponse,
    deprecated=True,
    responses={
        200: {
            "description": "The current session's conversations. Deprecated: use "
            "`GET /sessions/{userId}/history` (see the `Link` header).",
            "headers": {
                "Deprecation": {
                    "description": "RFC 9745: when this route was deprecated.",
                    "schema": {"type": "string"},
                },
                "Link": {
                    "description": 'The successor route, `rel="successor-version"`.',
                    "schema": {"type": "string"},
                },
            },
        }
    },
)
async def history(
    userId: AuthorizedUser, service: ServiceDep, response: Response, limit: TurnLimit = 10
) -> Any:
    """The original API's history: the current session's last conversations (deprecated)."""
    response.headers["Deprecation"] = f"@{DEPRECATED_SINCE}"
    response.headers["Link"] = f'</sessions/{userId}/history>; rel="successor-version"'
    sessions = await service.manager.active_sessions(userId)
    if not sessions:
        return {"userId": userId, "history": []}
    current = sessions[0]
    # Two messages per conversation, and one more in case the first shown is an answer.
    messages = await session_messages(service, current, 2 * limit + 1)
    return {"userId": userId, "history": interactions(messages, current.session_id)[-limit:]}
