"""The message repository: store a send, read history, check participants, record receipts."""

from __future__ import annotations

import asyncpg

from ..errors import NotFound
from . import queries
from .database import Connection, Database
from .records import FirstReceipt, Message, NewSend, StoredSend


def ordered_pair(user_a: int, user_b: int) -> tuple[int, int]:
    return (user_a, user_b) if user_a < user_b else (user_b, user_a)


class MessageStore:
    """Named operations on messages and conversations."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def store_send(self, send: NewSend) -> StoredSend:
        """Store one message, creating the conversation on first send; idempotent per
        (sender, clientMessageId) through a unique constraint, not a read-then-write.
        With a claim, the message is leased to that replica for delivery, in the same
        statement."""
        claim = send.claim
        claimed_by, lease = (claim.replica, claim.lease_seconds) if claim else (None, 0.0)
        sender_id, recipient_id = send.sender_id, send.recipient_id
        values = (
            sender_id,
            recipient_id,
            send.content,
            send.client_message_id,
            send.socket_id,
            claimed_by,
            lease,
            send.traceparent,
        )
        async with self._database.connection() as connection:
            try:
                message = await _insert(connection, sender_id, recipient_id, values)
                return StoredSend(message, created=True)
            except asyncpg.exceptions.UniqueViolationError as exc:
                if exc.constraint_name != queries.CLIENT_MESSAGE_ID_UNIQUE:
                    raise
            # The first send under this clientMessageId has committed (the insert waited for
            # it), so this read sees it; the failed insert took no seq.
            first = await connection.fetchrow(
                queries.MESSAGE_BY_CLIENT_ID, sender_id, send.client_message_id
            )
            assert first is not None, "a conflicting send must be visible after it committed"
            return StoredSend(Message.from_row(first), created=False)

    async def conversation_between(self, user_a: int, user_b: int) -> int:
        """The two users' conversation id, created when it does not exist yet."""
        async with self._database.connection() as connection:
            return await conversation_of(connection, user_a, user_b)

    async def participants(self, conversation_id: int) -> tuple[int, int] | None:
        """The two users of a conversation, or None when it does not exist."""
        async with self._database.connection() as connection:
            row = await connection.fetchrow(queries.CONVERSATION_PARTICIPANTS, conversation_id)
        return None if row is None else (row["user_low"], row["user_high"])

    async def history(
        self, conversation_id: int, *, after: int = 0, after_seq: int | None = None, limit: int
    ) -> list[Message]:
        """Messages of a conversation with seq > after_seq (when given) or else id > after,
        in seq order, at most `limit`."""
        query, cursor = (
            (queries.CONVERSATION_MESSAGES, after)
            if after_seq is None
            else (queries.CONVERSATION_MESSAGES_AFTER_SEQ, after_seq)
        )
        async with self._database.connection() as connection:
            rows = await connection.fetch(query, conversation_id, cursor, limit)
        return [Message.from_row(row) for row in rows]

    async def record_receipt(self, message_id: int, user_id: int) -> FirstReceipt | None:
        """The recipient's receipt; only the first one counts (None for a later one)."""
        async with self._database.connection() as connection:
            row = await connection.fetchrow(queries.RECORD_RECEIPT, message_id, user_id)
            if row is not None:
                return FirstReceipt(
                    message_id=message_id,
                    conversation_id=row["conversation_id"],
                    seq=row["seq"],
                    received_at=row["received_at"],
                    latency_seconds=max(0.0, float(row["latency"])),
                )
            if await connection.fetchval(queries.IS_RECIPIENT, message_id, user_id):
                return None
        raise NotFound("Message not found.")


async def _insert(
    connection: Connection, sender_id: int, recipient_id: int, values: tuple[object, ...]
) -> Message:
    """Insert the message with its conversation's next seq, creating the conversation on the
    first send; UniqueViolationError when (sender, clientMessageId) was used before."""
    # One round trip when the conversation exists, which is nearly always.
    row = await connection.fetchrow(
        queries.INSERT_MESSAGE_IN_EXISTING_CONVERSATION,
        *ordered_pair(sender_id, recipient_id),
        *values,
    )
    if row is None:
        conversation_id = await conversation_of(connection, sender_id, recipient_id)
        row = await connection.fetchrow(queries.INSERT_MESSAGE, conversation_id, *values)
    assert row is not None, "the conversation exists, so the insert returns its row"
    return Message.from_row(row)


async def conversation_of(connection: Connection, user_a: int, user_b: int) -> int:
    """The id of the two users' conversation, created when it does not exist yet."""
    low, high = ordered_pair(user_a, user_b)
    # Usually the conversation exists: one indexed read. On a first send, insert; if another
    # first send raced us, DO NOTHING waits for it and the next read (a new snapshot) sees it.
    for _ in range(3):
        found = await connection.fetchval(queries.FIND_CONVERSATION, low, high)
        if found is not None:
            return int(found)
        created = await connection.fetchval(queries.CREATE_CONVERSATION, low, high)
        if created is not None:
            return int(created)
    raise RuntimeError(f"conversation {low}-{high} neither found nor created")
