"""The calls to Pusher: up to `max_calls` aiojobs jobs take batches from the queue, each call
in its own span; a failed call is treated as `failures.py`'s table says. A call that turns
slow starts more calls for what waits behind it (nothing else would: no send may come).

The queue decides what a call carries, `DeliveryOutcomes` writes down what became of it; this
module only runs calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiojobs import Scheduler
from opentelemetry import context as otel_context
from opentelemetry import trace

from .breaker import CircuitBreaker, State
from .events import Delivery
from .failures import Treatment, Verdict, treatment_of
from .outcomes import DeliveryOutcomes, log_failure
from .pusher_client import PusherClient, PusherError
from .queue import Batch, DeliveryQueue
from .retry import RetryPolicy


class DeliveryPipeline:
    def __init__(
        self,
        *,
        queue: DeliveryQueue,
        client: PusherClient,
        scheduler: Scheduler,
        breaker: CircuitBreaker,
        policy: RetryPolicy,
        outcomes: DeliveryOutcomes,
        tracer: trace.Tracer,
    ) -> None:
        self._queue = queue
        self._client = client
        self._scheduler = scheduler
        self._breaker = breaker
        self._policy = policy
        self._outcomes = outcomes
        self._tracer = tracer
        self._calls = 0

    @property
    def calls_in_flight(self) -> int:
        return self._calls

    async def submit(self, delivery: Delivery, *, reserved: bool) -> None:
        """Queue an event for a coming call; never waits for Pusher."""
        self._queue.put(delivery, reserved=reserved)
        await self._start_calls()

    async def send_now(self, delivery: Delivery) -> None:
        """Sync mode: one call, now, in the caller's task."""
        await self._send([delivery])

    async def close(self, deadline: float) -> None:
        """Stop taking work, hand queued events back to the database at once, give calls in
        flight until `deadline`, then release whatever this replica still holds."""
        await self._outcomes.hand_back(self._queue.close())
        await self._scheduler.wait_and_close(deadline)
        await self._outcomes.release_all()

    # -- the jobs ----------------------------------------------------------------------------

    async def _start_calls(self) -> None:
        while self._queue.wants_another_call(self._calls):
            self._calls += 1
            await self._scheduler.spawn(self._call_until_empty(), name="pusher-flush")

    async def _call_until_empty(self) -> None:
        try:
            streaming = False  # this job's last call carried events: more are coming
            while not self._queue.closed:
                # a job that starts in a quiet moment never lingers; one that starts while
                # other calls are in flight (they turned slow) is under a stream too
                if streaming or self._queue.calls_in_flight:
                    await self._queue.wait_for_full_batch()
                batch = self._queue.take_batch()
                if not batch:
                    break
                streaming = True
                try:
                    await self._send_watching(batch)
                finally:
                    self._queue.finished(batch)
        finally:
            self._calls -= 1

    async def _send_watching(self, batch: Batch) -> None:
        """The call; if it turns slow before Pusher answers, more calls for the events waiting
        behind it, which the queue no longer counts on it to carry."""
        call = asyncio.ensure_future(self._send(batch))
        try:
            # a loop (uvloop's) may time in whole milliseconds: wait until the queue agrees
            while not call.done() and (wait := self._queue.seconds_until_slow(batch)) > 0:
                await asyncio.wait({call}, timeout=wait)
            if not call.done():
                await self._start_calls()
            await call
        finally:
            if not call.done():  # this job was cancelled (shutdown deadline): so is the call
                call.cancel()
                await asyncio.wait({call})

    # -- one call ----------------------------------------------------------------------------

    async def _send(self, batch: Sequence[Delivery]) -> None:
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
                outcome = await self._call_pusher(batch)
                span.set_attribute("delivery.outcome", outcome)
                if outcome != "success":
                    span.set_status(trace.StatusCode.ERROR, outcome)
        finally:
            otel_context.detach(token)

    async def _call_pusher(self, batch: Sequence[Delivery]) -> str:
        """The HTTP call itself, unless the circuit forbids it; returns the span's outcome."""
        if lapsed := self._outcomes.lapsed(batch):
            batch = [d for d in batch if d not in lapsed]
            if not batch:
                return "claim_lapsed"
        if not self._breaker.allow():
            # not a failed call: nothing to log per message
            wait = self._breaker.seconds_until_retry()
            await self._retry_uncounted(batch, wait, "circuit open", "circuit_open", None)
            return "circuit_open"
        self._outcomes.repeating(batch)
        # A failure while the circuit is closed is held against the events; a failed probe
        # (half-open) is Pusher's outage, not theirs: an outage must not use up attempts.
        probing = self._breaker.state is not State.CLOSED
        started = time.perf_counter()
        try:
            if len(batch) == 1:
                await self._client.trigger(batch[0].event)
            else:
                await self._client.trigger_batch([d.event for d in batch])
        except PusherError as error:
            treatment = treatment_of(error, events=len(batch))
            self._outcomes.call_made(treatment.outcome, time.perf_counter() - started)
            await self._after_failure(batch, error, treatment, probing=probing)
            return treatment.outcome
        except asyncio.CancelledError:
            # shutdown deadline: close() releases the claims, another replica delivers
            log_failure(batch, "cancelled at shutdown", "cancelled", "released")
            raise
        self._outcomes.call_made("success", time.perf_counter() - started)
        self._breaker.record_success()
        self._outcomes.accepted(batch)
        return "success"

    async def _after_failure(
        self, batch: Sequence[Delivery], error: PusherError, treatment: Treatment, *, probing: bool
    ) -> None:
        match treatment.verdict:
            case Verdict.SPLIT:
                for delivery in batch:
                    await self._send([delivery])
            case Verdict.DEAD_LETTER:
                await self._outcomes.dead_letter(batch, f"rejected by Pusher: {error}")
            case Verdict.PAUSE:
                pause = self._policy.pause_seconds
                self._breaker.open_for(pause)
                step = f"over quota, pausing delivery {pause:.0f}s"
                await self._retry_uncounted(batch, pause, str(error), treatment.outcome, step)
            case Verdict.RETRY:
                self._breaker.record_failure()
                if probing:
                    wait = self._breaker.seconds_until_retry()
                    step = f"probe failed, circuit open for {wait:.1f}s"
                    await self._retry_uncounted(batch, wait, str(error), treatment.outcome, step)
                else:
                    await self._retry_or_give_up(batch, error, treatment)

    async def _retry_uncounted(
        self,
        batch: Sequence[Delivery],
        wait: float,
        error: str,
        outcome: str,
        next_step: str | None,
    ) -> None:
        """Pusher's outage or quota, not the events' fault: due again after `wait`, with no
        attempt counted against them."""
        await self._outcomes.retry_later(
            batch,
            [wait] * len(batch),
            error,
            count_attempt=False,
            outcome=outcome,
            next_step=next_step,
        )

    async def _retry_or_give_up(
        self, batch: Sequence[Delivery], error: PusherError, treatment: Treatment
    ) -> None:
        policy = self._policy
        retry = [d for d in batch if not policy.exhausted(d.attempts + 1)]
        exhausted = [d for d in batch if policy.exhausted(d.attempts + 1)]
        if retry:
            delays = [policy.delay(d.attempts + 1) for d in retry]
            await self._outcomes.retry_later(
                retry,
                delays,
                str(error),
                count_attempt=True,
                outcome=treatment.outcome,
                next_step=f"retry in ≤{max(delays):.2f}s",
            )
        if exhausted:
            reason = f"gave up after {policy.max_attempts} attempts: {error}"
            await self._outcomes.dead_letter(exhausted, reason)
