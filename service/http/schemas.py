"""Request models: they validate bodies and queries (and will describe them in OpenAPI)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from ..ids import MAX_ID

MAX_CONTENT_CHARS = 2000
# Control characters other than tab and newline (C0, DEL, C1) are refused in content.
_FORBIDDEN_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SOCKET_ID_PATTERN = r"^\d{1,20}\.\d{1,20}$"
# For the OpenAPI description (the validator below is what enforces it): at least one visible
# character, none of the refused control characters.
_CONTENT_PATTERN = (
    r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*"
    r"[^\s\u0000-\u001f\u007f-\u009f]"
    r"[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$"
)

UserId = Annotated[StrictInt, Field(gt=0, le=MAX_ID)]


class SendMessageRequest(BaseModel):
    """Body of POST /api/messages/send."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    recipientId: UserId
    content: Annotated[
        StrictStr,
        Field(
            description="1 to 2000 characters after trimming; no control characters but tab "
            "and newline",
            json_schema_extra={
                "minLength": 1,
                "maxLength": MAX_CONTENT_CHARS,
                "pattern": _CONTENT_PATTERN,
            },
        ),
    ]
    clientMessageId: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    socketId: Annotated[StrictStr, Field(pattern=SOCKET_ID_PATTERN)] | None = None
    #: optional; when present it must be the token's user (the sender is the token's user)
    senderId: UserId | Annotated[StrictStr, Field(max_length=20)] | None = None

    @field_validator("content")
    @classmethod
    def _normalise_content(cls, value: str) -> str:
        value = _storable(value).strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_CONTENT_CHARS:
            raise ValueError(f"must be at most {MAX_CONTENT_CHARS} characters")
        return value

    @field_validator("clientMessageId")
    @classmethod
    def _check_client_message_id(cls, value: str | None) -> str | None:
        return None if value is None else _storable(value)


def _storable(value: str) -> str:
    """Text PostgreSQL can store and Pusher can carry: valid UTF-8 (no lone surrogates, which
    JSON's \\u escapes allow) and no control characters other than tab and newline."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no unpaired surrogates)") from None
    if _FORBIDDEN_CONTROL.search(value):
        raise ValueError("must not contain control characters other than tab and newline")
    return value


class HistoryQuery(BaseModel):
    """Query of GET /api/conversations/{conversationId}/messages."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    after: Annotated[
        int | None, Field(ge=0, le=MAX_ID, description="a message id: the page starts after it")
    ] = None
    afterSeq: Annotated[
        int | None,
        Field(ge=0, le=MAX_ID, description="a seq: the page starts after it (what clients use)"),
    ] = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50

    @model_validator(mode="after")
    def _one_cursor(self) -> HistoryQuery:
        if self.after is not None and self.afterSeq is not None:
            raise ValueError("give either after or afterSeq, not both")
        return self


class PusherAuthRequest(BaseModel):
    """Body of POST /api/pusher/auth (form or JSON), as pusher-js sends it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    socket_id: Annotated[StrictStr, Field(pattern=SOCKET_ID_PATTERN)]
    channel_name: Annotated[StrictStr, Field(min_length=1, max_length=200)]


# -- responses: they describe what handlers send (OpenAPI), and tests hold handlers to them --


class MessageOut(BaseModel):
    """The contract's MESSAGE."""

    id: int
    conversationId: int
    seq: int = Field(description="1, 2, 3 … within the conversation: no gap, no repeat")
    senderId: int
    recipientId: int
    content: str
    clientMessageId: str | None
    createdAt: Annotated[
        str, Field(description="RFC 3339, UTC", examples=["2026-01-02T03:04:05.000006Z"])
    ]


class SendMessageResponse(BaseModel):
    success: Literal[True]
    message: MessageOut


class HistoryResponse(BaseModel):
    success: Literal[True]
    messages: list[MessageOut]
    nextAfter: int | None = Field(description="pass as `after` for the next page; null at the end")
    nextAfterSeq: int | None = Field(
        description="pass as `afterSeq` for the next page; null at the end"
    )


class SuccessResponse(BaseModel):
    success: Literal[True]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. validation_failed")
    message: str
    details: list[FieldError] | None = None


class ErrorResponse(BaseModel):
    success: Literal[False]
    error: ErrorDetail


class NotReadyResponse(ErrorResponse):
    checks: dict[str, Literal["ok", "failing"]]


class PusherAuthResponse(BaseModel):
    auth: str = Field(description="<key>:<hex HMAC-SHA256 of '<socket_id>:<channel>'>")


class DeliveryModeRequest(BaseModel):
    """Body of PUT /admin/delivery-mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["async", "sync", "default"]


class DeliveryModeResponse(BaseModel):
    mode: Literal["async", "sync"]
    source: Literal["override", "default"]


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ok"]
    checks: dict[str, Literal["ok"]]
