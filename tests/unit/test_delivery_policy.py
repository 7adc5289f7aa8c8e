"""Pure delivery logic: backoff, the failure table, circuit breaker, the delivery queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.delivery.breaker import CircuitBreaker, State
from service.delivery.events import Delivery, PusherEvent
from service.delivery.failures import OUTCOMES, RULES, Verdict, treatment_of
from service.delivery.pusher_client import (
    PusherError,
    PusherRejected,
    PusherTimeout,
    PusherUnreachable,
)
from service.delivery.queue import DeliveryQueue
from service.delivery.retry import RetryPolicy


def test_backoff_ceiling_doubles_from_base_and_is_capped() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=10, max_attempts=8)
    assert [policy.ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.ceiling(10_000) == 10  # no overflow for absurd counts


def test_backoff_is_full_jitter_within_the_ceiling() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=60)
    assert policy.delay(3, rand=lambda: 0.0) == 0.0
    assert policy.delay(3, rand=lambda: 0.5) == 2.0
    assert policy.delay(3, rand=lambda: 0.999) < 4.0
    real = {policy.delay(5) for _ in range(50)}
    assert len(real) > 40 and all(0 <= d <= 16 for d in real)  # spread out, never above


def test_attempts_are_bounded() -> None:
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
def test_classification(error: PusherError, verdict: Verdict) -> None:
    assert treatment_of(error).verdict is verdict


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (PusherRejected(400, ""), Verdict.SPLIT),
        (PusherRejected(413, ""), Verdict.SPLIT),
        (PusherRejected(503, ""), Verdict.RETRY),
        (PusherRejected(403, ""), Verdict.PAUSE),
        (PusherTimeout(), Verdict.RETRY),
    ],
)
def test_a_rejected_batch_is_split_to_find_the_bad_event(
    error: PusherError, verdict: Verdict
) -> None:
    assert treatment_of(error, events=10).verdict is verdict


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (PusherTimeout(), "timeout"),
        (PusherUnreachable("reset"), "error"),
        (PusherRejected(500, ""), "error"),
        (PusherRejected(403, ""), "error"),
        (PusherError("something new"), "error"),
    ],
)
def test_each_failure_has_its_outcome_label(error: PusherError, outcome: str) -> None:
    assert treatment_of(error).outcome == outcome


def test_the_outcome_labels_are_the_contracts_and_come_from_the_table() -> None:
    assert sorted(OUTCOMES) == ["error", "success", "timeout"]
    assert {rule.outcome for rule in RULES} | {"success"} == set(OUTCOMES)


def test_a_failure_class_without_a_row_is_transient() -> None:
    class PusherNewFailure(PusherError):
        pass

    assert treatment_of(PusherNewFailure()).verdict is Verdict.RETRY


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: CircuitBreaker) -> State:
    """The state, read afresh (mypy would otherwise narrow the property between asserts)."""
    return breaker.state


def test_breaker_opens_after_threshold_then_lets_one_probe_through() -> None:
    clock, changes = Clock(), list[State]()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=5, clock=clock)
    breaker.on_change(changes.append)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert state_of(breaker) is State.CLOSED
    breaker.record_failure()
    assert state_of(breaker) is State.OPEN and not breaker.allow()
    assert breaker.seconds_until_retry() == 5
    clock.now += 5
    assert state_of(breaker) is State.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.record_failure()  # the probe failed: open again
    assert state_of(breaker) is State.OPEN
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    assert state_of(breaker) is State.CLOSED and breaker.allow()
    assert changes == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is State.CLOSED


def test_pause_keeps_the_longer_of_two_openings() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    breaker.open_for(60)
    breaker.open_for(5)
    assert breaker.seconds_until_retry() == 60


def _delivery(message_id: int, conversation: int) -> Delivery:
    event = PusherEvent(f"private-conversation-{conversation}", "new-message", "{}")
    return Delivery(message_id, conversation, event, datetime.now(UTC))


def _queue(breaker: CircuitBreaker | None = None, capacity: int = 100) -> DeliveryQueue:
    return DeliveryQueue(
        capacity=capacity, max_calls=4, linger_seconds=0, breaker=breaker or CircuitBreaker()
    )


def _ids(deliveries: list[Delivery]) -> list[int]:
    return [d.message_id for d in deliveries]


def test_batches_hold_at_most_ten_events_in_queue_order() -> None:
    queue = _queue()
    for n in range(25):
        queue.put(_delivery(n, n % 3), reserved=False)
    first = queue.take_batch()
    assert _ids(first) == list(range(10))
    assert len(queue) == 15


def test_a_conversation_in_flight_is_skipped_and_its_order_kept() -> None:
    queue = _queue()
    queue.put(_delivery(0, 7), reserved=False)
    in_flight = queue.take_batch()  # conversation 7 is being delivered
    for delivery in [_delivery(1, 7), _delivery(2, 8), _delivery(3, 7), _delivery(4, 9)]:
        queue.put(delivery, reserved=False)
    batch = queue.take_batch()
    assert _ids(batch) == [2, 4]
    assert queue.take_batch() == []  # 7's events wait while its call runs
    queue.finished(in_flight)
    assert _ids(queue.take_batch()) == [1, 3]  # back at the front, in order


def test_reservations_bound_the_queue() -> None:
    queue = _queue()
    reserved = [queue.reserve() for _ in range(101)]
    assert reserved.count(True) == 100 and reserved[-1] is False
    queue.unreserve()
    assert queue.reserve()


def test_a_reserved_place_is_used_by_its_event() -> None:
    queue = _queue(capacity=2)
    assert queue.reserve() and queue.reserve() and not queue.reserve()
    queue.put(_delivery(1, 1), reserved=True)
    assert queue.room() == 0  # the event took its own place, not a new one
    assert len(queue.take_batch()) == 1 and queue.room() == 1


def test_no_reservation_while_the_circuit_is_open() -> None:
    breaker = CircuitBreaker()
    queue = _queue(breaker)
    breaker.open_for(10)
    assert not queue.reserve()


def test_a_closed_queue_admits_nothing_and_hands_back_what_waited() -> None:
    queue = _queue()
    queue.put(_delivery(1, 1), reserved=False)
    queue.put(_delivery(2, 2), reserved=False)
    assert _ids(queue.close()) == [1, 2]
    assert not queue.reserve() and len(queue) == 0 and queue.closed


def test_another_call_only_for_more_than_a_full_batch_per_running_call() -> None:
    queue = _queue()
    assert not queue.wants_another_call(0)  # nothing waiting
    queue.put(_delivery(1, 1), reserved=False)
    assert queue.wants_another_call(0)
    assert not queue.wants_another_call(1)  # one call keeps up with one event
    for n in range(2, 12):
        queue.put(_delivery(n, n), reserved=False)
    assert queue.wants_another_call(1)  # 11 waiting: more than a batch for the one call
    assert not queue.wants_another_call(4)  # max_calls


def test_the_claim_budget_is_two_rounds_of_calls_within_the_room() -> None:
    queue = _queue(capacity=1000)
    assert queue.claim_budget() == 2 * 4 * 10
    for n in range(30):
        queue.put(_delivery(n, n), reserved=False)
    assert queue.claim_budget() == 80 - 30
    assert _queue(capacity=20).claim_budget() == 20  # never more than fits
