"""`POST /chat`: one conversation in the user's session, as JSON or server-sent events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from server.deps import ServiceDep
from server.schemas import ChatRequest, ChatResponse, ErrorResponse
from session_policy.manager import TurnResult

log = logging.getLogger(__name__)

router = APIRouter(prefix="/chat", tags=["chat"])


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
        422: {"model": ErrorResponse},
    },
)
async def chat(body: ChatRequest, request: Request, service: ServiceDep) -> Any:
    """Send a message; it is answered in the user's active session (or a new one)."""
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        result = await service.manager.chat(body.userId, body.message)
        return result.to_api()

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            async for event in service.manager.turn(body.userId, body.message):
                if isinstance(event, TurnResult):
                    yield {"event": "end", "data": json.dumps(event.to_api())}
                else:
                    yield {"event": "token", "data": json.dumps({"text": event})}
        except Exception as error:  # the stream is already open: report in-band
            log.exception("streamed turn failed for %s", body.userId)
            message = {"code": "internal_error", "message": type(error).__name__}
            yield {"event": "error", "data": json.dumps({"error": message})}

    return EventSourceResponse(events())
