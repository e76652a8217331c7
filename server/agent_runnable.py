"""The agent as LangServe serves it: one runnable that puts each message in the user's session.

LangServe's chat playground (and many clients) send the whole conversation every turn.
The server already holds the session's history, so only the last user message is new:
taking just that one keeps the stored session free of duplicated turns. The session is
resolved on the server from the user id (`X-User-Id` header or `configurable.user_id`);
a `thread_id` sent by a client is never used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from fastapi import HTTPException, Request
from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.messages import AIMessageChunk, AnyMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import BaseModel, Field

from server.auth import authorize, principal_of
from session_policy.ids import InvalidIdError, validate_user_id
from session_policy.manager import SessionManager, TurnResult

DEFAULT_USER = "playground"


class ChatInput(BaseModel):
    messages: list[AnyMessage] = Field(
        description="The conversation. Only the last user message is new: the server keeps "
        "the session's history."
    )


class PlaygroundAIMessage(BaseModel):
    """How the chat playground recognises an AI message (see `SessionAgent.OutputType`)."""

    content: str
    type: Literal["ai", "AIMessageChunk"]


def _last_user_text(payload: Any) -> str:
    messages: Sequence[Any] = (
        payload.get("messages", []) if isinstance(payload, dict) else payload.messages
    )
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text
        if isinstance(message, dict) and message.get("type") in ("human", "user"):
            return str(message.get("content", ""))
    return ""


def session_identity(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """LangServe's per-request hook: the user comes from the request, nothing else is kept.

    With AUTH_MODE=token a user token decides the user; asking for another one is a 403.
    """
    configurable = config.get("configurable") or {}
    asked = request.headers.get("x-user-id") or configurable.get("user_id")
    principal = principal_of(request)
    user_id = asked or principal.user_id or DEFAULT_USER
    try:
        validate_user_id(user_id)
    except InvalidIdError as error:
        raise HTTPException(400, str(error)) from None
    authorize(request, user_id)
    return {**config, "configurable": {"user_id": user_id}}


class SessionAgent(Runnable[dict[str, Any], AIMessageChunk]):
    """Answers the last user message in the user's session, streaming tokens."""

    name = "weather-agent"

    def __init__(
        self,
        manager: Callable[[], SessionManager],
        admit: Callable[[str, str], None] = lambda user_id, message: None,
    ) -> None:
        self._manager = manager  # resolved per call: the service starts after the app is built
        self._admit = admit

    @property
    def InputType(self) -> type[ChatInput]:  # type: ignore[override]  # schema, not dict
        return ChatInput

    @property
    def OutputType(self) -> Any:
        # LangServe's chat playground only accepts an output whose `type` is an enum holding
        # "ai"; AIMessageChunk's schema says `const`. The union keeps both in the schema.
        return AIMessageChunk | PlaygroundAIMessage

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return [
            ConfigurableFieldSpec(
                id="user_id",
                annotation=str,
                name="User id",
                description="Whose session to talk in (1-128 of A-Z a-z 0-9 _ . @ -).",
                default=DEFAULT_USER,
            )
        ]

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessageChunk:
        raise NotImplementedError("the session agent runs async: use ainvoke or astream")

    def stream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        raise NotImplementedError("the session agent runs async: use ainvoke or astream")

    async def _answer(
        self,
        inputs: AsyncIterator[dict[str, Any]],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AsyncIterator[AIMessageChunk]:
        payloads = [payload async for payload in inputs]
        text = _last_user_text(payloads[-1] if payloads else {})
        if not text.strip():
            yield AIMessageChunk(content="Please send a user message.")
            return
        user_id = validate_user_id((config.get("configurable") or {}).get("user_id", DEFAULT_USER))
        self._admit(user_id, text)
        # The inner run inherits callbacks (so stream_events shows the graph's events), never
        # the caller's configurable keys: the session decides the thread.
        inner: RunnableConfig = {k: v for k, v in config.items() if k != "configurable"}  # type: ignore[assignment]
        async for event in self._manager().turn(user_id, text, config=inner):
            if isinstance(event, TurnResult):
                session = {k: v for k, v in event.to_api().items() if k != "response"}
                yield AIMessageChunk(content="", response_metadata={"session": session})
            else:
                yield AIMessageChunk(content=event)

    def atransform(
        self,
        input: AsyncIterator[dict[str, Any]],
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        return self._atransform_stream_with_config(input, self._answer, config, **kwargs)

    def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        async def one() -> AsyncIterator[dict[str, Any]]:
            yield input

        return self.atransform(one(), config, **kwargs)

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessageChunk:
        final = AIMessageChunk(content="")
        async for chunk in self.astream(input, config, **kwargs):
            final = final + chunk
        return final
