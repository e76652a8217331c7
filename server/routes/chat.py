"""`POST /chat`: one conversation in the user's session, as JSON or server-sent events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from server.auth import acting_user
from server.deps import ServiceDep
from server.schemas import DEFAULT_USER_ID, ChatRequest, ChatResponse, ErrorResponse
from session_policy.manager import TurnResult

log = logging.getLogger(__name__)

router = APIRouter(prefix="/chat", tags=["chat"])


def _answer(result: TurnResult) -> dict[str, Any]:
    """The JSON answer; the stream's `end` event carries it too, `success` included."""
    return ChatResponse.model_validate(result.to_api()).model_dump()


@router.post(
    "",
    response_model=ChatResponse,
    responses={
        200: {
            "description": "The answer (JSON), or with `stream` / `Accept: text/event-stream` "
            "server-sent events: `token` {text} as the answer is produced, then `end` with "
            "the same object as the JSON answer; `error` on failure.",
            "content": {"text/event-stream": {}},
        },
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse, "description": "AUTH_MODE=token: no valid token."},
        403: {"model": ErrorResponse, "description": "The token may not act for this user."},
        409: {
            "model": ErrorResponse,
            "description": "Another message of this user is being answered (and this one "
            "waited DOUBLE_TEXTING_TIMEOUT for it, or DOUBLE_TEXTING=reject).",
        },
        413: {"model": ErrorResponse, "description": "Message over MAX_MESSAGE_CHARS."},
        422: {"model": ErrorResponse},
        429: {
            "model": ErrorResponse,
            "description": "Over RATE_LIMIT_PER_MINUTE; see Retry-After.",
        },
    },
)
async def chat(body: ChatRequest, request: Request, service: ServiceDep) -> Any:
    """Send a message; it is answered in the user's active session (or a new one).

    Without `userId` (as the original API allowed) the user is `default`, or the token's."""
    user_id = acting_user(request, body.userId, DEFAULT_USER_ID)
    service.admit(user_id, body.message)
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        result = await service.manager.chat(user_id, body.message)
        return _answer(result)

    turn = service.manager.turn(user_id, body.message)
    # Take the first event before answering (a queued message waits here), so a busy user
    # gets a plain 409, not a stream.
    first = await anext(turn)

    def as_sse(event: str | TurnResult) -> dict[str, str]:
        if isinstance(event, TurnResult):
            return {"event": "end", "data": json.dumps(_answer(event))}
        return {"event": "token", "data": json.dumps({"text": event})}

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            yield as_sse(first)
            async for event in turn:
                yield as_sse(event)
        except Exception as error:  # the stream is already open: report in-band
            log.exception("streamed turn failed for %s", user_id)
            message = {"code": "internal_error", "message": type(error).__name__}
            yield {"event": "error", "data": json.dumps({"error": message})}

    return EventSourceResponse(events())
