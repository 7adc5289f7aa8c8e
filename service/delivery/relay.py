"""The relay: the safety net that delivers what the fast path did not, and the loops that keep
this replica's claims alive and the backlog visible.

It claims due, unleased pending messages (`FOR UPDATE SKIP LOCKED`, so replicas share the
backlog without double work) and feeds them to the same pipeline. Messages land here after a
crash (their lease runs out), a Pusher outage (released with a backoff), or a full in-memory
queue (stored unclaimed). It polls; nothing else needs to wake it, because every path that
leaves a message pending also sets when it is due.
"""

from __future__ import annotations

import asyncio

from ..store.outbox import Outbox
from ..telemetry.metrics import Metrics
from .breaker import CircuitBreaker, State
from .events import MAX_BATCH_EVENTS, Delivery
from .loops import survive
from .pipeline import DeliveryPipeline
from .queue import DeliveryQueue


class Relay:
    def __init__(
        self,
        *,
        queue: DeliveryQueue,
        pipeline: DeliveryPipeline,
        outbox: Outbox,
        breaker: CircuitBreaker,
        poll_seconds: float,
    ) -> None:
        self._queue = queue
        self._pipeline = pipeline
        self._outbox = outbox
        self._breaker = breaker
        self._poll = poll_seconds
        self._expedite = False

    def circuit_changed(self, state: State) -> None:
        """When the circuit closes, Pusher is back: drain the backlog now, not after each
        message's backoff or cool-down runs out."""
        if state is State.CLOSED:
            self._expedite = True

    async def claim_and_submit(self) -> int:
        """One round: claim what is due and fits in memory, hand it to the pipeline."""
        state = self._breaker.state
        if state is State.OPEN:
            return 0
        limit = self._queue.claim_budget()
        if state is State.HALF_OPEN:
            limit = min(limit, MAX_BATCH_EVENTS)  # one batch, whose call is the probe
        if limit <= 0:
            return 0
        claimed = await self._outbox.claim_due(limit=limit)
        for pending in claimed:
            await self._pipeline.submit(Delivery.from_pending(pending), reserved=False)
        return len(claimed)

    async def run(self) -> None:
        """Poll forever; a full round goes again at once, so a backlog drains at full speed."""
        while True:
            if self._expedite:
                self._expedite = False
                await survive(self._outbox.make_pending_due(), "relay")
            claimed = await survive(self.claim_and_submit(), "relay")
            if claimed:
                # a backlog: claim again as soon as the queue has room, not a poll later
                await self._queue.wait_until_claims_wanted(timeout=self._poll)
            else:
                await asyncio.sleep(self._poll)


async def renew_claims(outbox: Outbox) -> None:
    """Renew this replica's claims at a third of the lease: they only run out if it dies."""
    while True:
        await asyncio.sleep(outbox.claim.lease_seconds / 3)
        await survive(outbox.renew_claims(), "lease renewal")


async def show_backlog(outbox: Outbox, metrics: Metrics, every: float) -> None:
    """The backlog gauges (database-wide: every replica reports the same value)."""
    while True:
        await survive(_refresh_backlog(outbox, metrics), "backlog gauges")
        await asyncio.sleep(every)


async def _refresh_backlog(outbox: Outbox, metrics: Metrics) -> None:
    backlog = await outbox.backlog()
    metrics.undelivered.set(backlog.pending)
    metrics.oldest_undelivered_age.set(backlog.oldest_age_seconds)
