"""A session's conversation as people read it: user and assistant text, tool traffic left out.

Two shapes: messages `{role, content, timestamp}` (the API's), and the original Node.js
service's interactions `{timestamp, message, response, sessionId}`, one per conversation.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from session_policy.models import iso


def text_messages(messages: list[BaseMessage], limit: int) -> list[dict[str, Any]]:
    """User and assistant text turns (tool traffic left out), the last `limit` of them."""
    shown = []
    for message in messages:
        if isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage) and message.text and not message.tool_calls:
            role = "assistant"
        else:
            continue
        stamp = message.response_metadata.get("timestamp")
        shown.append(
            {"role": role, "content": message.text, "timestamp": iso(stamp) if stamp else None}
        )
    return shown[-limit:]


def interactions(messages: list[dict[str, Any]], session_id: str) -> list[dict[str, Any]]:
    """The original's history items: each user message (of `text_messages`) with the answer
    that followed it, one item per conversation."""
    turns: list[dict[str, Any]] = []
    asked: dict[str, Any] | None = None
    for message in messages:
        if message["role"] == "user":
            asked = message
        elif asked is not None:
            turns.append(
                {
                    "timestamp": message["timestamp"],
                    "message": asked["content"],
                    "response": message["content"],
                    "sessionId": session_id,
                }
            )
            asked = None
    return turns
