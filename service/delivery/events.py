"""What a stored message becomes on its way to Pusher: the event (channel, name, data) with
Pusher's limits, and the `Delivery` that carries it through this replica."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import trace

from ..store.records import Message, PendingDelivery
from ..telemetry.tracing import span_context_of

EVENT_NAME = "new-message"
#: Pusher rejects an event whose data exceeds this many bytes (UTF-8) with a 413.
MAX_EVENT_DATA_BYTES = 10_240
#: Pusher's multi-tenant clusters accept at most this many events per batch call.
MAX_BATCH_EVENTS = 10
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


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message's event, held by this replica until Pusher accepts it (or it is handed
    back to the database)."""

    message_id: int
    conversation_id: int
    event: PusherEvent
    committed_at: datetime
    #: Pusher calls already made for it
    attempts: int = 0
    #: the send request's span: the delivery span links to it (it outlives the request)
    origin: trace.SpanContext | None = None
    #: when this replica took its claim (monotonic, just after the claiming statement): with
    #: the last renewal, how long the claim is known to last (`Outbox.still_holds`)
    claimed_at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_request(cls, message: Message, socket_id: str | None, data: str) -> Delivery:
        """Made in the send request, whose span becomes the delivery's link."""
        origin = trace.get_current_span().get_span_context()
        return cls(
            message.id,
            message.conversation_id,
            PusherEvent.for_message(message, socket_id, data),
            message.created_at,
            origin=origin if origin.is_valid else None,
        )

    @classmethod
    def from_pending(cls, pending: PendingDelivery) -> Delivery:
        """Claimed from the database by the relay; links to the request that stored it."""
        message = pending.message
        return cls(
            message.id,
            message.conversation_id,
            PusherEvent.for_message(message, pending.socket_id),
            message.created_at,
            pending.attempts,
            span_context_of(pending.traceparent),
        )
