"""The in-memory leg of delivery: events waiting for a Pusher call, sent in batches.

Bounded: at most `capacity` events wait in memory and at most `max_calls` Pusher calls run at
once, each in an aiojobs job. Every event here belongs to a message row this replica has
claimed in PostgreSQL, so dropping one (crash, shutdown, overflow) loses nothing: its claim
runs out, or is released, and the relay delivers it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiojobs import Scheduler

from ..errors import DatabaseUnavailable
from ..store.messages import Message
from ..store.outbox import Outbox, PendingDelivery
from ..telemetry.metrics import Metrics
from .breaker import CircuitBreaker, State
from .events import PusherEvent
from .pusher_client import MAX_BATCH_EVENTS, PusherClient, PusherError
from .retry import RetryPolicy, Verdict, classify

log = logging.getLogger(__name__)

#: how far into the queue one batch looks for events of conversations not already in flight
_SCAN_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: int
    conversation_id: int
    event: PusherEvent
    committed_at: datetime
    attempts: int = 0

    @classmethod
    def of(cls, message: Message, socket_id: str | None, attempts: int = 0) -> Delivery:
        return cls(
            message.id,
            message.conversation_id,
            PusherEvent.for_message(message, socket_id),
            message.created_at,
            attempts,
        )

    @classmethod
    def claimed(cls, pending: PendingDelivery) -> Delivery:
        return cls.of(pending.message, pending.socket_id, pending.attempts)


class DeliveryPipeline:
    def __init__(
        self,
        *,
        client: PusherClient,
        outbox: Outbox,
        scheduler: Scheduler,
        breaker: CircuitBreaker,
        policy: RetryPolicy,
        metrics: Metrics,
        replica: str,
        capacity: int,
        max_calls: int,
        quota_pause_seconds: float,
    ) -> None:
        self._client = client
        self._outbox = outbox
        self._scheduler = scheduler
        self._breaker = breaker
        self._policy = policy
        self._metrics = metrics
        self.replica = replica
        self._capacity = capacity
        self._max_calls = max_calls
        self._quota_pause = quota_pause_seconds
        self._pending: deque[Delivery] = deque()
        self._reserved = 0
        self._busy_conversations: set[int] = set()
        self._flushers = 0
        self._closing = False
        metrics.background_jobs.labels("active").set_function(lambda: self._flushers)
        metrics.background_jobs.labels("pending").set_function(lambda: len(self._pending))

    # -- admission ---------------------------------------------------------------------------

    def room(self) -> int:
        return self._capacity - len(self._pending) - self._reserved

    def reserve(self) -> bool:
        """Hold a place for one event, before its message is stored; False when the queue is
        full, the circuit is open or we are shutting down (the relay will deliver it)."""
        if self._closing or self.room() <= 0 or self._breaker.state is State.OPEN:
            return False
        self._reserved += 1
        return True

    def unreserve(self) -> None:
        self._reserved -= 1

    async def submit(self, delivery: Delivery, *, reserved: bool) -> None:
        """Queue an event for the next batch; never waits for Pusher."""
        if reserved:
            self._reserved -= 1
        self._pending.append(delivery)
        await self._start_flushers()

    async def deliver_now(self, delivery: Delivery) -> None:
        """Sync mode: one call, now, in the caller's task."""
        await self._deliver([delivery])

    # -- flushing ----------------------------------------------------------------------------

    async def _start_flushers(self) -> None:
        while self._pending and self._flushers < self._max_calls and not self._closing:
            self._flushers += 1
            await self._scheduler.spawn(self._flush(), name="pusher-flush")

    async def _flush(self) -> None:
        try:
            while not self._closing and (batch := self._take_batch()):
                conversations = {d.conversation_id for d in batch}
                self._busy_conversations |= conversations
                try:
                    await self._deliver(batch)
                finally:
                    self._busy_conversations -= conversations
        finally:
            self._flushers -= 1

    def _take_batch(self) -> list[Delivery]:
        """Up to 10 events in queue order, skipping conversations that another call is
        delivering right now: a conversation's events never race each other."""
        batch: list[Delivery] = []
        skipped: list[Delivery] = []
        while self._pending and len(batch) < MAX_BATCH_EVENTS and len(skipped) < _SCAN_LIMIT:
            delivery = self._pending.popleft()
            if delivery.conversation_id in self._busy_conversations:
                skipped.append(delivery)
            else:
                batch.append(delivery)
        self._pending.extendleft(reversed(skipped))
        return batch

    async def _deliver(self, batch: list[Delivery]) -> None:
        if not self._breaker.allow():
            wait = self._breaker.seconds_until_retry()
            await self._release(batch, [wait] * len(batch), "circuit open", count_attempt=False)
            return
        if any(d.attempts for d in batch):
            self._metrics.pusher_retries.inc()
        # A failure while the circuit is closed is held against the events; a failed probe
        # (half-open) is Pusher's outage, not theirs: an outage must not use up attempts.
        probing = self._breaker.state is not State.CLOSED
        started = time.perf_counter()
        try:
            if len(batch) == 1:
                await self._client.trigger(batch[0].event)
            else:
                await self._client.trigger_batch([d.event for d in batch])
        except PusherError as exc:
            self._observe_call(exc.outcome, started)
            await self._failed(batch, exc, probing=probing)
            return
        except asyncio.CancelledError:
            # shutdown deadline: close() releases the claims, another replica delivers
            _log_failure([d.message_id for d in batch], "cancelled at shutdown", "released")
            raise
        self._observe_call("success", started)
        self._breaker.record_success()
        accepted = time.time()
        for delivery in batch:
            latency = max(0.0, accepted - delivery.committed_at.timestamp())
            self._metrics.delivery_latency.labels("pusher_ack").observe(latency)
        await self._record(self._outbox.mark_delivered([d.message_id for d in batch], self.replica))

    def _observe_call(self, outcome: str, started: float) -> None:
        self._metrics.pusher_requests.labels(outcome).inc()
        self._metrics.pusher_request_duration.observe(time.perf_counter() - started)

    async def _failed(self, batch: list[Delivery], error: PusherError, *, probing: bool) -> None:
        verdict = classify(error)
        if verdict is Verdict.DEAD_LETTER and len(batch) > 1:
            # One bad event fails the whole batch call: find it by sending them one by one.
            for delivery in batch:
                await self._deliver([delivery])
            return
        ids = [d.message_id for d in batch]
        if verdict is Verdict.DEAD_LETTER:
            await self._dead_letter(ids, f"rejected by Pusher: {error}")
            return
        if verdict is Verdict.PAUSE:
            self._breaker.open_for(self._quota_pause)
            _log_failure(ids, error, f"over quota, pausing delivery {self._quota_pause:.0f}s")
            await self._release(
                batch, [self._quota_pause] * len(batch), str(error), count_attempt=False
            )
            return
        self._breaker.record_failure()
        if probing:
            wait = self._breaker.seconds_until_retry()
            _log_failure(ids, error, f"probe failed, circuit open for {wait:.1f}s")
            await self._release(batch, [wait] * len(batch), str(error), count_attempt=False)
            return
        retry = [d for d in batch if not self._policy.exhausted(d.attempts + 1)]
        exhausted = [d.message_id for d in batch if self._policy.exhausted(d.attempts + 1)]
        if retry:
            delays = [self._policy.delay(d.attempts + 1) for d in retry]
            _log_failure([d.message_id for d in retry], error, f"retry in ≤{max(delays):.1f}s")
            await self._release(retry, delays, str(error), count_attempt=True)
        if exhausted:
            reason = f"gave up after {self._policy.max_attempts} attempts: {error}"
            await self._dead_letter(exhausted, reason)

    async def _release(
        self, batch: Sequence[Delivery], delays: Sequence[float], error: str, *, count_attempt: bool
    ) -> None:
        ids = [d.message_id for d in batch]
        await self._record(
            self._outbox.release_for_retry(ids, delays, error[:500], count_attempt=count_attempt)
        )

    async def _dead_letter(self, ids: list[int], reason: str) -> None:
        try:
            newly = await self._outbox.dead_letter(ids, reason[:500])
        except DatabaseUnavailable:
            log.warning(
                "could not record dead letters; their leases will run out",
                extra={"message_ids": ids},
            )
            return
        self._metrics.dead_lettered.inc(len(newly))
        for message_id in newly:
            log.error(
                "Pusher trigger failed for message %s: dead-lettered (%s)",
                message_id,
                reason,
                extra={"message_id": message_id, "outcome": "dead_lettered"},
            )

    async def _record(self, write: Awaitable[object]) -> None:
        """A delivery-state write; if the database is down, the lease runs out and the relay
        takes the message again (at worst a duplicate, which clients drop by id)."""
        try:
            await write
        except DatabaseUnavailable:
            log.warning("could not record a delivery outcome: database unavailable")

    # -- shutdown ----------------------------------------------------------------------------

    async def close(self, deadline: float) -> None:
        """Stop taking work, hand queued events back to the database at once, give calls in
        flight until `deadline`, then release whatever this replica still holds."""
        self._closing = True
        queued = [d.message_id for d in self._pending]
        self._pending.clear()
        if queued:
            await self._record(self._outbox.release_claims(self.replica, queued))
        await self._scheduler.wait_and_close(deadline)
        await self._record(self._outbox.release_claims_of(self.replica))


def _log_failure(ids: list[int], error: PusherError | str, next_step: str) -> None:
    outcome = error.outcome if isinstance(error, PusherError) else "cancelled"
    for message_id in ids:
        log.warning(
            "Pusher trigger failed for message %s: %s; %s",
            message_id,
            error,
            next_step,
            extra={"message_id": message_id, "outcome": outcome},
        )
