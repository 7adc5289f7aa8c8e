"""The in-memory leg of delivery: events waiting for a Pusher call, sent in batches.

Bounded: at most `capacity` events wait in memory and at most `max_calls` Pusher calls run at
once, each in an aiojobs job. Every event here belongs to a message row this replica has
claimed in PostgreSQL, so dropping one (crash, shutdown, overflow) loses nothing: its claim
runs out, or is released, and the relay delivers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiojobs import Scheduler
from opentelemetry import context as otel_context
from opentelemetry import trace

from ..errors import DatabaseUnavailable
from ..store.messages import Message
from ..store.outbox import Outbox, PendingDelivery
from ..telemetry.errors import report_dead_letter
from ..telemetry.metrics import Metrics
from ..telemetry.tracing import exemplar, span_context_of
from .breaker import CircuitBreaker, State
from .events import PusherEvent
from .ledger import DeliveredLedger
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
    #: the send request's span: the delivery span links to it (it outlives the request)
    origin: trace.SpanContext | None = None

    @classmethod
    def of(
        cls,
        message: Message,
        socket_id: str | None,
        attempts: int = 0,
        origin: trace.SpanContext | None = None,
        data: str | None = None,
    ) -> Delivery:
        return cls(
            message.id,
            message.conversation_id,
            PusherEvent.for_message(message, socket_id, data),
            message.created_at,
            attempts,
            origin,
        )

    @classmethod
    def from_request(cls, message: Message, socket_id: str | None, data: str) -> Delivery:
        """Made in the send request, whose span becomes the delivery's link."""
        origin = trace.get_current_span().get_span_context()
        return cls.of(message, socket_id, origin=origin if origin.is_valid else None, data=data)

    @classmethod
    def claimed(cls, pending: PendingDelivery) -> Delivery:
        origin = span_context_of(pending.traceparent)
        return cls.of(pending.message, pending.socket_id, pending.attempts, origin)


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
        tracer: trace.Tracer,
        replica: str,
        capacity: int,
        max_calls: int,
        linger_seconds: float,
        quota_pause_seconds: float,
        ledger: DeliveredLedger,
    ) -> None:
        self._client = client
        self._outbox = outbox
        self._scheduler = scheduler
        self._breaker = breaker
        self._policy = policy
        self._metrics = metrics
        self._tracer = tracer
        self.replica = replica
        self._capacity = capacity
        self._max_calls = max_calls
        self._linger = linger_seconds
        self._quota_pause = quota_pause_seconds
        self._ledger = ledger
        self._pending: deque[Delivery] = deque()
        self._reserved = 0
        self._busy_conversations: set[int] = set()
        self._flushers = 0
        self._closing = False
        self._rounds = 2 * max_calls * MAX_BATCH_EVENTS
        self._hungry = asyncio.Event()
        self._batch_full = asyncio.Event()
        metrics.background_jobs.labels("active").set_function(lambda: self._flushers)
        metrics.background_jobs.labels("pending").set_function(lambda: len(self._pending))

    # -- admission ---------------------------------------------------------------------------

    def room(self) -> int:
        return self._capacity - len(self._pending) - self._reserved

    def appetite(self) -> int:
        """How many more events the relay should hand over now: about two rounds of calls.
        Claiming more than that would only park rows here that other replicas could be
        delivering, so replicas share a backlog in proportion to their delivery speed."""
        return max(0, min(self.room(), self._rounds - len(self._pending)))

    async def wait_for_appetite(self, timeout: float) -> None:
        """Until the queue has drained to half of `appetite`'s mark (or `timeout`)."""
        self._hungry.clear()
        if len(self._pending) < self._rounds // 2:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._hungry.wait()

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
        if len(self._pending) >= MAX_BATCH_EVENTS:
            self._batch_full.set()
        await self._start_flushers()

    async def deliver_now(self, delivery: Delivery) -> None:
        """Sync mode: one call, now, in the caller's task."""
        await self._deliver([delivery])

    # -- flushing ----------------------------------------------------------------------------

    async def _start_flushers(self) -> None:
        """One call at a time while it keeps up; another only when more than a full batch per
        running call is waiting. Events that arrive during a call wait for the next one, so
        batches fill by themselves under load and nobody waits when it is quiet."""
        while (
            self._pending
            and self._flushers < self._max_calls
            and not self._closing
            and len(self._pending) > self._flushers * MAX_BATCH_EVENTS
        ):
            self._flushers += 1
            await self._scheduler.spawn(self._flush(), name="pusher-flush")

    async def _flush(self) -> None:
        try:
            streaming = False  # this flusher's last call carried events: more are coming
            while not self._closing:
                if streaming:
                    await self._linger_for_a_full_batch()
                batch = self._take_batch()
                if not batch:
                    break
                streaming = True
                conversations = {d.conversation_id for d in batch}
                self._busy_conversations |= conversations
                try:
                    await self._deliver(batch)
                finally:
                    self._busy_conversations -= conversations
        finally:
            self._flushers -= 1

    async def _linger_for_a_full_batch(self) -> None:
        """Under a stream of sends, wait up to `linger` for a full batch (like Kafka's
        linger.ms): a call costs the same CPU on both ends whether it carries one event or
        ten. A flusher that just started, i.e. a quiet moment, never waits."""
        if not self._linger or not 0 < len(self._pending) < MAX_BATCH_EVENTS:
            return
        self._batch_full.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._linger):
                await self._batch_full.wait()

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
        if len(self._pending) < self._rounds // 2:
            self._hungry.set()
        return batch

    async def _deliver(self, batch: list[Delivery]) -> None:
        """One Pusher call for the batch, in its own span (a root, since it serves several
        requests) linked to the span of each request that stored one of its messages."""
        links = [trace.Link(d.origin) for d in batch if d.origin is not None]
        attributes: dict[str, str | int | list[int]] = {
            "messaging.system": "pusher",
            "messaging.operation.type": "send",
            "messaging.batch.message_count": len(batch),
            "messaging.destination.name": batch[0].event.channel,
            "message.ids": [d.message_id for d in batch],
        }
        if len(batch) == 1:
            attributes["messaging.message.id"] = str(batch[0].message_id)
        # A job spawned from a request runs in a copy of that request's context: start from an
        # empty one, so the call is not a child of the request span and does not inherit an
        # unsampled request's suppression of instrumentation (telemetry/http.py).
        token = otel_context.attach(otel_context.Context())
        try:
            with self._tracer.start_as_current_span(
                "pusher send", kind=trace.SpanKind.PRODUCER, links=links, attributes=attributes
            ) as span:
                outcome = await self._call(batch)
                span.set_attribute("delivery.outcome", outcome)
                if outcome != "success":
                    span.set_status(trace.StatusCode.ERROR, outcome)
        finally:
            otel_context.detach(token)

    async def _call(self, batch: list[Delivery]) -> str:
        if not self._breaker.allow():
            wait = self._breaker.seconds_until_retry()
            await self._release(batch, [wait] * len(batch), "circuit open", count_attempt=False)
            return "circuit_open"
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
            return exc.outcome
        except asyncio.CancelledError:
            # shutdown deadline: close() releases the claims, another replica delivers
            _log_failure([d.message_id for d in batch], "cancelled at shutdown", "released")
            raise
        self._observe_call("success", started)
        self._breaker.record_success()
        accepted = time.time()
        acknowledged = self._metrics.delivery_latency.labels("pusher_ack")
        for delivery in batch:
            latency = max(0.0, accepted - delivery.committed_at.timestamp())
            acknowledged.observe(latency, exemplar())
        self._ledger.record([d.message_id for d in batch])
        return "success"

    def _observe_call(self, outcome: str, started: float) -> None:
        self._metrics.pusher_requests.labels(outcome).inc()
        self._metrics.pusher_request_duration.observe(time.perf_counter() - started, exemplar())

    async def _failed(self, batch: list[Delivery], error: PusherError, *, probing: bool) -> None:
        verdict = classify(error)
        if verdict is Verdict.DEAD_LETTER and len(batch) > 1:
            # One bad event fails the whole batch call: find it by sending them one by one.
            for delivery in batch:
                await self._deliver([delivery])
            return
        ids = [d.message_id for d in batch]
        if verdict is Verdict.DEAD_LETTER:
            await self._dead_letter(batch, f"rejected by Pusher: {error}")
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
        exhausted = [d for d in batch if self._policy.exhausted(d.attempts + 1)]
        if retry:
            delays = [self._policy.delay(d.attempts + 1) for d in retry]
            _log_failure([d.message_id for d in retry], error, f"retry in ≤{max(delays):.2f}s")
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

    async def _dead_letter(self, batch: Sequence[Delivery], reason: str) -> None:
        ids = [d.message_id for d in batch]
        try:
            newly = set(await self._outbox.dead_letter(ids, reason[:500]))
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
        self._batch_full.set()  # a lingering flusher stops waiting for a batch that won't come
        queued = [d.message_id for d in self._pending]
        self._pending.clear()
        if queued:
            await self._record(self._outbox.release_claims(self.replica, queued))
        await self._scheduler.wait_and_close(deadline)
        await self._ledger.flush()  # before releasing: what Pusher accepted must not go again
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
