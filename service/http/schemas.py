"""Request models: they validate bodies and queries (and will describe them in OpenAPI)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

MAX_CONTENT_CHARS = 2000
_MAX_BIGINT = 2**63 - 1
# Control characters other than tab and newline (C0, DEL, C1) are refused in content.
_FORBIDDEN_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SOCKET_ID_PATTERN = r"^\d{1,20}\.\d{1,20}$"

UserId = Annotated[StrictInt, Field(gt=0, le=_MAX_BIGINT)]


class SendMessageRequest(BaseModel):
    """Body of POST /api/messages/send."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    recipientId: UserId
    content: StrictStr
    clientMessageId: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    socketId: Annotated[StrictStr, Field(pattern=SOCKET_ID_PATTERN)] | None = None
    #: optional; when present it must be the token's user (the sender is the token's user)
    senderId: UserId | Annotated[StrictStr, Field(max_length=20)] | None = None

    @field_validator("content")
    @classmethod
    def _normalise_content(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_CONTENT_CHARS:
            raise ValueError(f"must be at most {MAX_CONTENT_CHARS} characters")
        if _FORBIDDEN_CONTROL.search(value):
            raise ValueError("must not contain control characters other than tab and newline")
        return value


class HistoryQuery(BaseModel):
    """Query of GET /api/conversations/{conversationId}/messages."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    after: Annotated[int, Field(ge=0, le=_MAX_BIGINT)] = 0
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class PusherAuthRequest(BaseModel):
    """Body of POST /api/pusher/auth (form or JSON), as pusher-js sends it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    socket_id: Annotated[StrictStr, Field(pattern=SOCKET_ID_PATTERN)]
    channel_name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
