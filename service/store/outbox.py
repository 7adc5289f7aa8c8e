"""Delivery state of stored messages, seen by one replica: claim, deliver, retry,
dead-letter, release."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from . import queries
from .database import Database
from .records import Backlog, Claim, Message, PendingDelivery


class Outbox:
    """Named delivery-state operations on behalf of `claim`'s replica; every write is one
    statement."""

    def __init__(self, database: Database, claim: Claim) -> None:
        self._database = database
        self.claim = claim
        #: when the last successful renewal started (monotonic): every claim still ours was
        #: extended to at least this plus the lease
        self._renewed_at = -math.inf

    async def claim_due(self, *, limit: int) -> list[PendingDelivery]:
        """Up to `limit` due, unleased pending messages, now leased to this replica."""
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                queries.CLAIM_DUE_MESSAGES, self.claim.replica, limit, self.claim.lease_seconds
            )
        deliveries = [
            PendingDelivery(
                Message.from_row(row),
                row["sender_socket_id"],
                row["delivery_attempts"],
                row["traceparent"],
            )
            for row in rows
        ]
        return sorted(deliveries, key=lambda d: d.message.id)  # RETURNING has no order

    async def mark_delivered(self, ids: Sequence[int]) -> None:
        await self._database.execute(queries.MARK_DELIVERED, list(ids), self.claim.replica)

    async def release_for_retry(
        self, ids: Sequence[int], delays: Sequence[float], error: str, *, count_attempt: bool
    ) -> None:
        await self._database.execute(
            queries.RELEASE_FOR_RETRY,
            list(ids),
            list(delays),
            error,
            count_attempt,
            self.claim.replica,
        )

    async def dead_letter(self, ids: Sequence[int], reason: str) -> list[int]:
        """Give up on these messages, those this replica still holds; returns the ids given up
        on now (not those given up on before, delivered or taken over meanwhile)."""
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                queries.DEAD_LETTER, list(ids), reason, self.claim.replica
            )
        return [row["id"] for row in rows]

    async def release(self, ids: Sequence[int]) -> None:
        """Let go of these claims now (work dropped from memory): the relay takes them."""
        await self._database.execute(queries.RELEASE_CLAIMS, self.claim.replica, list(ids))

    async def release_all(self) -> None:
        """Let go of every claim this replica holds (shutdown)."""
        await self._database.execute(queries.RELEASE_CLAIMS_OF, self.claim.replica)

    async def renew_claims(self) -> None:
        """Extend every live claim of this replica by its lease."""
        started = time.monotonic()
        await self._database.execute(
            queries.RENEW_CLAIMS_OF, self.claim.replica, self.claim.lease_seconds
        )
        self._renewed_at = started

    def still_holds(self, claimed_at: float) -> bool:
        """Whether a claim taken at `claimed_at` (monotonic) is known to be this replica's
        still: taken or renewed less than a lease ago. When not (the process was paused past
        its lease, or could not renew), another replica may hold it now. Best effort, to
        avoid sending twice: what keeps a stale replica from undoing anything is the
        database (its writes apply only to rows still claimed by it)."""
        since = max(claimed_at, self._renewed_at)
        return time.monotonic() - since < self.claim.lease_seconds

    async def make_pending_due(self) -> None:
        await self._database.execute(queries.MAKE_PENDING_DUE)

    async def backlog(self) -> Backlog:
        async with self._database.connection() as connection:
            row = await connection.fetchrow(queries.DELIVERY_BACKLOG)
        assert row is not None
        return Backlog(row["pending"], row["oldest_age"])
