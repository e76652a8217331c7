"""Request and response bodies of our own routes (camelCase JSON, like the original API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from session_policy.ids import InvalidIdError, validate_user_id
from session_policy.models import EndReason

USER_ID_DESCRIPTION = "1-128 characters from A-Z a-z 0-9 _ . @ -, not only dots"


def check_user_id(user_id: object) -> str:
    """A user id the API accepts: session_policy's rule, and not only dots.

    `.` and `..` are dot-segments that URL clients remove (RFC 3986): such a user's
    `/sessions/{userId}` could never be reached. `InvalidIdError` (a ValueError) says why.
    """
    user_id = validate_user_id(user_id)
    if not user_id.strip("."):
        raise InvalidIdError(f"invalid userId {user_id!r}: use {USER_ID_DESCRIPTION}")
    return user_id


# Validated by `check_user_id` (its message says what is allowed); the schema states the same
# rule as a pattern (not only dots: a lookahead, which schemathesis leaves as written rather than
# merging the length into a quantifier of its own) and a length.
USER_ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(?!\.+$)[A-Za-z0-9_.@-]+$",
    "minLength": 1,
    "maxLength": 128,
    "description": USER_ID_DESCRIPTION,
    "examples": ["user123"],
}
UserId = Annotated[str, AfterValidator(check_user_id), WithJsonSchema(USER_ID_SCHEMA)]


DEFAULT_USER_ID = "default"  # the original API's user when a request names none


class Answered(BaseModel):
    """`success: true` on every answer, as the original API sent it (errors have none)."""

    success: Literal[True] = Field(
        default=True, description="Always true: errors answer `{error}` with a 4xx/5xx status."
    )


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, examples=["Weather in London?"])
    # Optional, but a string when given: the schema is the user id's alone (not nullable).
    userId: Annotated[UserId | None, WithJsonSchema(USER_ID_SCHEMA)] = Field(
        default=None,
        description=f"Optional, as in the original API: without it the user is "
        f"`{DEFAULT_USER_ID}` (AUTH_MODE=none) or the token's user (AUTH_MODE=token).",
    )
    stream: bool = Field(default=False, description="Answer as server-sent events.")

    @field_validator("userId", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means "the default user"; an explicit null is a client bug worth a 422.
        if value is None:
            raise ValueError("must be a string; leave userId out for the default user")
        return value


class ChatResponse(Answered):
    response: str = Field(examples=["Right now in London, United Kingdom it's 11°C ..."])
    userId: str
    sessionId: str = Field(examples=["session:user123:1764050000000"])
    conversationCount: int
    sessionStatus: Literal["active", "ended"]
    endReason: EndReason | None
    timestamp: str = Field(examples=["2026-11-25T07:00:00.000Z"])
    storage: Literal["redis", "memory"]


class SessionInfo(BaseModel):
    sessionId: str
    startTime: str
    lastActivity: str
    conversationCount: int
    duration: float = Field(description="Seconds since the session started.")
    status: Literal["active"]
    expiresAt: str = Field(description="When a time limit ends it if nothing else does.")
    endsBy: EndReason = Field(description="Which time limit that is.")
    storage: Literal["redis", "memory"]


class SessionsResponse(Answered):
    userId: str
    activeSessions: int
    sessions: list[SessionInfo]


class EndedSessionInfo(BaseModel):
    sessionId: str
    userId: str
    startTime: str
    endTime: str
    duration: float
    conversationCount: int
    endReason: EndReason
    status: Literal["ended"]


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    timestamp: str | None


class HistoryResponse(Answered):
    userId: str
    sessionId: str | None = Field(description="The current session, if any.")
    messages: list[Message]
    endedSessions: list[EndedSessionInfo]
    history: list[Interaction] = Field(
        description="The same messages as the original API listed them: one per conversation."
    )
    count: int = Field(description="Items in `history`.")


class SessionHistoryResponse(Answered):
    userId: str
    sessionId: str
    status: Literal["active", "ended"]
    messages: list[Message] = Field(description="Empty once the session ended: its data is gone.")
    record: EndedSessionInfo | None = Field(description="The ended session's record.")
    history: list[Interaction] = Field(
        description="The same messages as the original API listed them: one per conversation."
    )
    count: int = Field(description="Items in `history`.")


class EndRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="manual", max_length=200, examples=["user_requested"])


class EndResponse(Answered):
    userId: str
    endedSessions: list[str]
    reason: str
    message: str = Field(examples=["All sessions ended for user user123"])


class Interaction(BaseModel):
    """One conversation as the original API listed it."""

    timestamp: str | None = Field(description="When the answer was made.")
    message: str = Field(description="What the user said.")
    response: str = Field(description="The agent's answer.")
    sessionId: str


class LegacyHistoryResponse(Answered):
    userId: str
    history: list[Interaction] = Field(description="The current session's conversations.")


class CleanupResponse(Answered):
    ended: list[EndedSessionInfo] = Field(description="The sessions this sweep ended.")
    endedCount: int
    durationMs: float = Field(description="How long the sweep took.")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
