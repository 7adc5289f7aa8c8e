"""The Pusher event a message becomes: channel, name, data, and Pusher's size limit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..store.messages import Message

EVENT_NAME = "new-message"
#: Pusher rejects an event whose data exceeds this many bytes (UTF-8) with a 413.
MAX_EVENT_DATA_BYTES = 10_240
CHANNEL_PREFIX = "private-conversation-"


def channel_for(conversation_id: int) -> str:
    return f"{CHANNEL_PREFIX}{conversation_id}"


def encode_data(payload: dict[str, Any]) -> str:
    """Compact JSON with non-ASCII kept as UTF-8: `\\uXXXX` escapes would triple the size
    of emoji-heavy text against Pusher's byte limit."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def data_size(data: str) -> int:
    return len(data.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class PusherEvent:
    channel: str
    name: str
    data: str
    socket_id: str | None = None

    @classmethod
    def for_message(
        cls, message: Message, socket_id: str | None = None, data: str | None = None
    ) -> PusherEvent:
        """`data` is the message's JSON when the caller already has it (the send response)."""
        return cls(
            channel=channel_for(message.conversation_id),
            name=EVENT_NAME,
            data=data if data is not None else encode_data(message.to_json()),
            socket_id=socket_id,
        )
