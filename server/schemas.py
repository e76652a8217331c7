"""Request and response bodies of our own routes (camelCase JSON, like the original API)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

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
UserId = Annotated[
    str,
    AfterValidator(check_user_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(?!\.+$)[A-Za-z0-9_.@-]+$",
            "minLength": 1,
            "maxLength": 128,
            "description": USER_ID_DESCRIPTION,
            "examples": ["user123"],
        }
    ),
]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, examples=["Weather in London?"])
    userId: UserId
    stream: bool = Field(default=False, description="Answer as server-sent events.")


class ChatResponse(BaseModel):
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


class SessionsResponse(BaseModel):
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


class HistoryResponse(BaseModel):
    userId: str
    sessionId: str | None = Field(description="The current session, if any.")
    messages: list[Message]
    endedSessions: list[EndedSessionInfo]


class SessionHistoryResponse(BaseModel):
    userId: str
    sessionId: str
    status: Literal["active", "ended"]
    messages: list[Message] = Field(description="Empty once the session ended: its data is gone.")
    record: EndedSessionInfo | None = Field(description="The ended session's record.")


class EndRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="manual", max_length=200, examples=["user_requested"])


class EndResponse(BaseModel):
    userId: str
    endedSessions: list[str]
    reason: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
