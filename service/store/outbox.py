"""Delivery state of stored messages: claim, deliver, retry, dead-letter, release."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from . import queries
from .messages import Message
from .pool import acquire


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


class Outbox:
    """Named delivery-state operations over the pool; every write is one statement."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    async def claim_due(
        self, replica: str, *, limit: int, lease_seconds: float
    ) -> list[PendingDelivery]:
        async with acquire(self._pool, self._acquire_timeout) as connection:
            rows = await connection.fetch(queries.CLAIM_DUE_MESSAGES, replica, limit, lease_seconds)
        deliveries = [
            PendingDelivery(
                Message.from_row(row), row["sender_socket_id"], row["delivery_attempts"]
            )
            for row in rows
        ]
        return sorted(deliveries, key=lambda d: d.message.id)  # RETURNING has no order

    async def mark_delivered(self, ids: Sequence[int], replica: str) -> None:
        await self._execute(queries.MARK_DELIVERED, list(ids), replica)

    async def release_for_retry(
        self, ids: Sequence[int], delays: Sequence[float], error: str, *, count_attempt: bool
    ) -> None:
        await self._execute(
            queries.RELEASE_FOR_RETRY, list(ids), list(delays), error, count_attempt
        )

    async def dead_letter(self, ids: Sequence[int], reason: str) -> list[int]:
        async with acquire(self._pool, self._acquire_timeout) as connection:
            rows = await connection.fetch(queries.DEAD_LETTER, list(ids), reason)
        return [row["id"] for row in rows]

    async def release_claims(self, replica: str, ids: Sequence[int]) -> None:
        await self._execute(queries.RELEASE_CLAIMS, replica, list(ids))

    async def renew_claims_of(self, replica: str, lease_seconds: float) -> None:
        await self._execute(queries.RENEW_CLAIMS_OF, replica, lease_seconds)

    async def release_claims_of(self, replica: str) -> None:
        await self._execute(queries.RELEASE_CLAIMS_OF, replica)

    async def make_pending_due(self) -> None:
        await self._execute(queries.MAKE_PENDING_DUE)

    async def backlog(self) -> Backlog:
        async with acquire(self._pool, self._acquire_timeout) as connection:
            row = await connection.fetchrow(queries.DELIVERY_BACKLOG)
        assert row is not None
        return Backlog(row["pending"], row["oldest_age"])

    async def _execute(self, query: str, *args: object) -> None:
        async with acquire(self._pool, self._acquire_timeout) as connection:
            await connection.execute(query, *args)
