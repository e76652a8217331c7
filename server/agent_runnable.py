"""The agent as LangServe serves it: one runnable that puts each message in the user's session.

LangServe's chat playground (and many clients) send the whole conversation every turn.
The server already holds the session's history, so only the last user message is new:
taking just that one keeps the stored session free of duplicated turns. The session is
resolved on the server from the user id (`X-User-Id` header or `configurable.user_id`);
a `thread_id` sent by a client is never used.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Literal

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.messages import AIMessageChunk, AnyMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import BaseModel, Field, ValidatorFunctionWrapHandler, field_validator
from typing_extensions import TypeAliasType

from server.auth import authorize, principal_of
from server.schemas import USER_ID_DESCRIPTION, UserId, check_user_id
from session_policy.ids import InvalidIdError, validate_user_id
from session_policy.manager import SessionManager, TurnResult

DEFAULT_USER = "playground"
# Set in `configurable` by `admitting_identity` once the request's message passed the limits.
ADMITTED = "admitted"
# LangServe rebuilds its config model from each field's bare annotation, which drops an
# Annotated's validator and schema; a named alias keeps both (an invalid id is a 422).
ConfigUserId = TypeAliasType("ConfigUserId", UserId)


class ChatInput(BaseModel):
    messages: list[AnyMessage] = Field(
        description="The conversation. Only the last user message is new: the server keeps "
        "the session's history."
    )

    @field_validator("messages", mode="wrap")
    @classmethod
    def _malformed_messages_are_invalid(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> Any:
        """LangChain's message parsing raises TypeError on some malformed messages (a list
        instead of an object, no `type`, unknown `tool_calls` keys); pydantic only turns
        ValueError into a validation error (422), so translate it here, for this input only."""
        try:
            return handler(value)
        except TypeError as error:
            raise ValueError(
                f'each message is an object like {{"type": "human", "content": "hi"}} ({error})'
            ) from None


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
        check_user_id(user_id)
    except InvalidIdError as error:
        raise HTTPException(400, str(error)) from None
    authorize(request, user_id)
    return {**config, "configurable": {"user_id": user_id}}


def admitting_identity(
    admit: Callable[[str, str], None],
) -> Callable[[dict[str, Any], Request], Awaitable[dict[str, Any]]]:
    """LangServe's per-request hook: `session_identity`, then the message limits.

    Admitting here, before LangServe starts its response, makes an over-long message or a
    rate-limited user a 413/429 on /stream and /stream_events too, not an error event inside
    a 200 stream. Batch bodies (several inputs) are admitted per input by `SessionAgent`.
    """

    async def hook(config: dict[str, Any], request: Request) -> dict[str, Any]:
        config = session_identity(config, request)
        body = await request.json()  # LangServe parsed it already: cached on the request
        if isinstance(body, dict) and isinstance(body.get("inputs"), list):  # /batch
            for item in body["inputs"]:  # LangServe does not translate these errors: a 500
                ChatInput.model_validate(item)
        elif isinstance(body, dict) and "input" in body:
            text = _last_user_text(ChatInput.model_validate(body["input"]))  # else 422
            if text.strip():
                admit(config["configurable"]["user_id"], text)
            config["configurable"][ADMITTED] = True
        return config

    return hook


async def json_body(request: Request) -> None:
    """A dependency of the LangServe routes: a POST body must be UTF-8 JSON.

    LangServe catches only JSONDecodeError (a 500 for a body that is not UTF-8); this answers
    like our own routes: 422 for invalid JSON, 400 for bytes that are not UTF-8.
    """
    if request.method != "POST":
        return
    try:
        await request.json()  # cached on the request for LangServe
    except UnicodeDecodeError:
        raise HTTPException(400, "the request body is not UTF-8 JSON") from None
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", error.pos), "ctx": {"error": error.msg}}]
        ) from None


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
                annotation=ConfigUserId,
                name="User id",
                description=f"Whose session to talk in ({USER_ID_DESCRIPTION}).",
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
        configurable = config.get("configurable") or {}
        user_id = validate_user_id(configurable.get("user_id", DEFAULT_USER))
        if not configurable.get(ADMITTED):
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
