"""The relay: the safety net that delivers what the fast path did not.

It claims due, unleased pending messages (`FOR UPDATE SKIP LOCKED`, so replicas share the
backlog without double work) and feeds them to the same batching pipeline. Messages land here
after a crash (their lease runs out), a Pusher outage (released with a backoff), or a full
in-memory queue (stored unclaimed). It polls; nothing else needs to wake it, because every
path that leaves a message pending also sets when it is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from ..errors import DatabaseUnavailable
from ..store.outbox import Outbox
from ..telemetry.metrics import Metrics
from .breaker import CircuitBreaker, State
from .pipeline import Delivery, DeliveryPipeline
from .pusher_client import MAX_BATCH_EVENTS

log = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        *,
        pipeline: DeliveryPipeline,
        outbox: Outbox,
        breaker: CircuitBreaker,
        metrics: Metrics,
        lease_seconds: float,
        poll_seconds: float,
        backlog_refresh_seconds: float,
    ) -> None:
        self._pipeline = pipeline
        self._outbox = outbox
        self._breaker = breaker
        self._metrics = metrics
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._backlog_refresh = backlog_refresh_seconds
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
        # half-open: claim one batch, whose call is the probe
        limit = self._pipeline.appetite()
        if state is State.HALF_OPEN:
            limit = min(limit, MAX_BATCH_EVENTS)
        if limit <= 0:
            return 0
        claimed = await self._outbox.claim_due(
            self._pipeline.replica, limit=limit, lease_seconds=self._lease
        )
        for pending in claimed:
            await self._pipeline.submit(Delivery.claimed(pending), reserved=False)
        return len(claimed)

    async def refresh_backlog(self) -> None:
        backlog = await self._outbox.backlog()
        self._metrics.undelivered.set(backlog.pending)
        self._metrics.oldest_undelivered_age.set(backlog.oldest_age_seconds)

    async def run_delivery(self) -> None:
        """Poll forever; a full round goes again at once, so a backlog drains at full speed."""
        while True:
            if self._expedite:
                self._expedite = False
                await self._guarded(self._outbox.make_pending_due())
            claimed = await self._guarded(self.claim_and_submit())
            if claimed:
                # a backlog: claim again as soon as the queue has room, not a poll later
                await self._pipeline.wait_for_appetite(timeout=self._poll)
            else:
                await asyncio.sleep(self._poll)

    async def run_lease_renewal(self) -> None:
        """Renew this replica's claims at a third of the lease: they only run out if it dies."""
        while True:
            await asyncio.sleep(self._lease / 3)
            await self._guarded(self._outbox.renew_claims_of(self._pipeline.replica, self._lease))

    async def run_backlog_gauges(self) -> None:
        while True:
            await self._guarded(self.refresh_backlog())
            await asyncio.sleep(self._backlog_refresh)

    async def _guarded(self, step: Awaitable[int | None]) -> int:
        try:
            result = await step
        except DatabaseUnavailable:
            log.warning("relay: database unavailable, will retry")
            return 0
        except Exception:
            log.exception("relay round failed")
            return 0
        return result if isinstance(result, int) else 0
