"""Pure delivery logic: backoff, classification, circuit breaker, batch selection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from opentelemetry import trace

from service.delivery.breaker import CircuitBreaker, State
from service.delivery.events import PusherEvent
from service.delivery.pipeline import Delivery, DeliveryPipeline
from service.delivery.pusher_client import PusherRejected, PusherTimeout, PusherUnreachable
from service.delivery.retry import RetryPolicy, Verdict, classify
from service.telemetry.metrics import Metrics


def test_backoff_ceiling_doubles_from_base_and_is_capped():
    policy = RetryPolicy(base_seconds=1, cap_seconds=10, max_attempts=8)
    assert [policy.ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.ceiling(10_000) == 10  # no overflow for absurd counts


def test_backoff_is_full_jitter_within_the_ceiling():
    policy = RetryPolicy(base_seconds=1, cap_seconds=60)
    assert policy.delay(3, rand=lambda: 0.0) == 0.0
    assert policy.delay(3, rand=lambda: 0.5) == 2.0
    assert policy.delay(3, rand=lambda: 0.999) < 4.0
    real = {policy.delay(5) for _ in range(50)}
    assert len(real) > 40 and all(0 <= d <= 16 for d in real)  # spread out, never above


def test_attempts_are_bounded():
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (PusherTimeout(), Verdict.RETRY),
        (PusherUnreachable("reset"), Verdict.RETRY),
        (PusherRejected(500, ""), Verdict.RETRY),
        (PusherRejected(502, ""), Verdict.RETRY),
        (PusherRejected(429, ""), Verdict.RETRY),
        (PusherRejected(400, ""), Verdict.DEAD_LETTER),
        (PusherRejected(401, ""), Verdict.DEAD_LETTER),
        (PusherRejected(413, ""), Verdict.DEAD_LETTER),
        (PusherRejected(403, ""), Verdict.PAUSE),
    ],
)
def test_classification(error, verdict):
    assert classify(error) is verdict


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_then_lets_one_probe_through():
    clock, changes = Clock(), []
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=5, clock=clock)
    breaker.on_change(changes.append)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is State.CLOSED
    breaker.record_failure()
    assert breaker.state is State.OPEN and not breaker.allow()
    assert breaker.seconds_until_retry() == 5
    clock.now += 5
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.record_failure()  # the probe failed: open again
    assert breaker.state is State.OPEN
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is State.CLOSED and breaker.allow()
    assert changes == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is State.CLOSED


def test_pause_keeps_the_longer_of_two_openings():
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    breaker.open_for(60)
    breaker.open_for(5)
    assert breaker.seconds_until_retry() == 60


def _delivery(message_id: int, conversation: int) -> Delivery:
    event = PusherEvent(f"private-conversation-{conversation}", "new-message", "{}")
    return Delivery(message_id, conversation, event, datetime.now(UTC))


def _pipeline() -> DeliveryPipeline:
    # _take_batch touches only the in-memory queue; the collaborators are never called
    return DeliveryPipeline(
        client=None, outbox=None, scheduler=None, breaker=CircuitBreaker(), policy=RetryPolicy(),
        metrics=Metrics(), tracer=trace.NoOpTracer(), replica="r", capacity=100, max_calls=4,
        linger_seconds=0, quota_pause_seconds=1, ledger=None,
    )  # fmt: skip


def test_batches_hold_at_most_ten_events_in_queue_order():
    pipeline = _pipeline()
    pipeline._pending.extend(_delivery(n, n % 3) for n in range(25))
    first = pipeline._take_batch()
    assert [d.message_id for d in first] == list(range(10))
    assert len(pipeline._pending) == 15


def test_a_conversation_in_flight_is_skipped_and_its_order_kept():
    pipeline = _pipeline()
    pipeline._pending.extend([_delivery(1, 7), _delivery(2, 8), _delivery(3, 7), _delivery(4, 9)])
    pipeline._busy_conversations.add(7)
    batch = pipeline._take_batch()
    assert [d.message_id for d in batch] == [2, 4]
    assert [d.message_id for d in pipeline._pending] == [1, 3]  # back at the front, in order


def test_reservations_bound_the_queue():
    pipeline = _pipeline()
    reserved = [pipeline.reserve() for _ in range(101)]
    assert reserved.count(True) == 100 and reserved[-1] is False
    pipeline.unreserve()
    assert pipeline.reserve()


def test_no_reservation_while_the_circuit_is_open():
    pipeline = _pipeline()
    pipeline._breaker.open_for(10)
    assert not pipeline.reserve()
