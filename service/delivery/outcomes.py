"""What became of each Pusher call, written down: in the database (so nothing is lost or sent
twice on purpose), in the logs, in Sentry and in the metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from ..errors import DatabaseUnavailable
from ..store.outbox import Outbox
from ..telemetry.metrics import Metrics
from ..telemetry.sentry import report_dead_letter
from ..telemetry.tracing import exemplar
from .events import Delivery
from .ledger import DeliveredLedger

log = logging.getLogger(__name__)

#: failure text kept with a message in the database
_MAX_ERROR_CHARS = 500

_Write = Callable[..., Awaitable[object]]


class DeliveryOutcomes:
    def __init__(self, *, outbox: Outbox, ledger: DeliveredLedger, metrics: Metrics) -> None:
        self._outbox = outbox
        self._ledger = ledger
        self._metrics = metrics

    def lapsed(self, batch: Sequence[Delivery]) -> list[Delivery]:
        """The events whose claims may have lapsed (this replica was paused or cut off from
        the database past its lease): another replica may be delivering them now, so they
        are dropped from memory, not sent; if nobody took them, the relay claims them
        again (the lease has run out)."""
        lapsed = [d for d in batch if not self._outbox.still_holds(d.claimed_at)]
        if lapsed:
            self._metrics.delivery_claims_lapsed.inc(len(lapsed))
            log.warning(
                "claims lapsed before their Pusher call; events dropped, the relay delivers",
                extra={"message_ids": [d.message_id for d in lapsed]},
            )
        return lapsed

    def repeating(self, batch: Sequence[Delivery]) -> None:
        """A call is about to go out: count it as a retry if it carries an event that failed
        before."""
        if any(d.attempts for d in batch):
            self._metrics.pusher_retries.inc()

    def call_made(self, outcome: str, seconds: float) -> None:
        """One HTTP call to Pusher, counted by outcome and timed."""
        self._metrics.pusher_requests.labels(outcome).inc()
        self._metrics.pusher_request_duration.observe(seconds, exemplar())

    def accepted(self, batch: Sequence[Delivery]) -> None:
        """Pusher took these: latency from commit, and the delivered mark (coalesced)."""
        accepted = time.time()
        latency = self._metrics.delivery_latency.labels("pusher_ack")
        for delivery in batch:
            latency.observe(max(0.0, accepted - delivery.committed_at.timestamp()), exemplar())
        self._ledger.record([d.message_id for d in batch])

    async def retry_later(
        self,
        batch: Sequence[Delivery],
        delays: Sequence[float],
        error: str,
        *,
        count_attempt: bool,
        outcome: str,
        next_step: str | None,
    ) -> None:
        """Hand these back to the relay, each due after its delay; with a `next_step`, log
        the failure for each message first."""
        if next_step is not None:
            log_failure(batch, error, outcome, next_step)
        ids = [d.message_id for d in batch]
        await self._write(
            self._outbox.release_for_retry,
            ids,
            delays,
            error[:_MAX_ERROR_CHARS],
            count_attempt=count_attempt,
        )

    async def dead_letter(self, batch: Sequence[Delivery], reason: str) -> None:
        """Give up on these: once each, however many replicas get here."""
        ids = [d.message_id for d in batch]
        try:
            newly = set(await self._outbox.dead_letter(ids, reason[:_MAX_ERROR_CHARS]))
        except DatabaseUnavailable:
            log.warning("could not record dead letters; leases will run out", extra={"ids": ids})
            return
        self._metrics.dead_lettered.inc(len(newly))
        for delivery in batch:
            if delivery.message_id not in newly:
                continue  # another replica got there first: report once
            log.error(
                "Pusher trigger failed for message %s: dead-lettered (%s)",
                delivery.message_id,
                reason,
                extra={"message_id": delivery.message_id, "outcome": "dead_lettered"},
            )
            report_dead_letter(
                message_id=delivery.message_id,
                conversation_id=delivery.conversation_id,
                reason=reason,
            )

    async def hand_back(self, batch: Sequence[Delivery]) -> None:
        """Release the claims of events dropped from memory: the relay takes them at once."""
        if batch:
            await self._write(self._outbox.release, [d.message_id for d in batch])

    async def release_all(self) -> None:
        """At shutdown, after the last call: record what Pusher accepted (it must not go
        again), then let go of everything else this replica still holds."""
        await self._ledger.flush()
        await self._write(self._outbox.release_all)

    async def _write(self, operation: _Write, *args: object, **kwargs: object) -> None:
        """A delivery-state write; if the database is down, the lease runs out and the relay
        takes the message again (at worst a duplicate, which clients drop by id)."""
        try:
            await operation(*args, **kwargs)
        except DatabaseUnavailable:
            log.warning("could not record a delivery outcome: database unavailable")


def log_failure(batch: Sequence[Delivery], error: str, outcome: str, next_step: str) -> None:
    """The line on-call greps for: one per message, `Pusher trigger failed for message <id>`."""
    for delivery in batch:
        log.warning(
            "Pusher trigger failed for message %s: %s; %s",
            delivery.message_id,
            error,
            next_step,
            extra={"message_id": delivery.message_id, "outcome": outcome},
        )
