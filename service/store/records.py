"""What the stores take and return: plain frozen records, no database handles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ..settings import DeliveryMode


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    recipient_id: int
    content: str
    client_message_id: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Message:
        return cls(
            id=row["id"],
            conversation_id=row["conversation_id"],
            seq=row["seq"],
            sender_id=row["sender_id"],
            recipient_id=row["recipient_id"],
            content=row["content"],
            client_message_id=row["client_message_id"],
            created_at=row["created_at"],
        )

    def to_json(self) -> dict[str, Any]:
        """The contract's MESSAGE shape."""
        return {
            "id": self.id,
            "conversationId": self.conversation_id,
            "seq": self.seq,
            "senderId": self.sender_id,
            "recipientId": self.recipient_id,
            "content": self.content,
            "clientMessageId": self.client_message_id,
            "createdAt": rfc3339(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class NewSend:
    """A message to store, as the send request gave it."""

    sender_id: int
    recipient_id: int
    content: str
    client_message_id: str | None
    socket_id: str | None = None
    #: lease the message to this replica for delivery, in the statement that stores it
    claim: Claim | None = None
    #: the W3C traceparent of the request, so a later delivery links to it
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class StoredSend:
    message: Message
    #: False when the clientMessageId had been used before and `message` is the first one
    created: bool


@dataclass(frozen=True, slots=True)
class FirstReceipt:
    """The recipient's client got message `message_id`: recorded now, for the first time."""

    message_id: int
    conversation_id: int
    seq: int
    received_at: datetime
    #: from the message's commit to the receipt, on the database's clock
    latency_seconds: float

    def to_json(self) -> dict[str, Any]:
        """The data of the `message-received` event the sender's clients get."""
        return {
            "id": self.message_id,
            "conversationId": self.conversation_id,
            "seq": self.seq,
            "receivedAt": rfc3339(self.received_at),
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """A replica's hold on messages it is delivering: who, and for how long without renewal
    (after a crash, other replicas take the messages over once it runs out)."""

    replica: str
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A stored message on its way to Pusher."""

    message: Message
    socket_id: str | None
    #: Pusher calls already made for it
    attempts: int
    #: W3C traceparent of the request that stored it
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    oldest_age_seconds: float


@dataclass(frozen=True, slots=True)
class ModeOverride:
    mode: DeliveryMode
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class ModeChange:
    #: async, sync, or default (the override was cleared)
    mode: str
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    conversation_id: int
    created_at: datetime
    dead_lettered_at: datetime
    attempts: int
    reason: str

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> DeadLetter:
        return cls(
            id=row["id"],
            conversation_id=row["conversation_id"],
            created_at=row["created_at"],
            dead_lettered_at=row["dead_lettered_at"],
            attempts=row["delivery_attempts"],
            reason=row["dead_letter_reason"] or "",
        )
