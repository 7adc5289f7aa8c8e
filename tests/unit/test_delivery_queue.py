"""The delivery queue's rule for a conversation in flight: its events wait for a young call,
not for a slow one; and the pipeline starts calls when a call turns slow, with nobody sending.

(Batches, admission and the claim budget are in test_delivery_policy.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import aiojobs
from opentelemetry import trace

from service.delivery.breaker import CircuitBreaker
from service.delivery.events import Delivery, PusherEvent
from service.delivery.outcomes import DeliveryOutcomes
from service.delivery.pipeline import DeliveryPipeline
from service.delivery.pusher_client import PusherClient
from service.delivery.queue import DeliveryQueue
from service.delivery.retry import RetryPolicy

from ..helpers import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _delivery(message_id: int, conversation: int = 7) -> Delivery:
    event = PusherEvent(f"private-conversation-{conversation}", "new-message", str(message_id))
    return Delivery(message_id, conversation, event, datetime.now(UTC))


def _queue(clock: Clock, max_calls: int = 8) -> DeliveryQueue:
    return DeliveryQueue(
        capacity=1000, max_calls=max_calls, linger_seconds=0, breaker=CircuitBreaker(), clock=clock
    )


def _put(queue: DeliveryQueue, ids: range, conversation: int = 7) -> None:
    for n in ids:
        queue.put(_delivery(n, conversation), reserved=False)


def _ids(deliveries: Sequence[Delivery]) -> list[int]:
    return [d.message_id for d in deliveries]


def test_a_young_call_holds_its_conversation_a_slow_one_does_not() -> None:
    clock = Clock()
    queue = _queue(clock)
    _put(queue, range(1))
    first = queue.take_batch()
    _put(queue, range(1, 4))
    _put(queue, range(4, 5), conversation=8)
    assert _ids(queue.take_batch()) == [4]  # 7 waits for its young call; 8 goes
    clock.now += queue.slow_after
    assert _ids(queue.take_batch()) == [1, 2, 3]  # the call is slow: 7's events go now
    assert queue.calls_in_flight == 3
    queue.finished(first)
    assert queue.calls_in_flight == 2


def test_once_a_call_of_it_is_slow_its_younger_calls_hold_nothing() -> None:
    clock = Clock()
    queue = _queue(clock)
    _put(queue, range(1))
    first = queue.take_batch()
    clock.now += queue.slow_after
    _put(queue, range(1, 21))
    second, third = queue.take_batch(), queue.take_batch()  # both behind the slow one
    assert (_ids(second), _ids(third)) == (list(range(1, 11)), list(range(11, 21)))
    queue.finished(first)  # its oldest call in flight is young again: order is kept again
    _put(queue, range(21, 22))
    assert queue.take_batch() == []
    queue.finished(second)
    queue.finished(third)
    assert _ids(queue.take_batch()) == [21]


def test_slow_is_four_times_the_recent_median_within_a_tenth_and_a_quarter_second() -> None:
    clock = Clock()
    queue = _queue(clock)
    assert queue.slow_after == 0.25  # nothing measured yet: keep order as long as allowed

    def calls_of(seconds: float, count: int) -> float:
        for n in range(count):
            _put(queue, range(n, n + 1), conversation=n)
            batch = queue.take_batch()
            clock.now += seconds
            queue.finished(batch)
        return queue.slow_after

    assert calls_of(0.002, 32) == 0.1  # a healthy Pusher: the floor
    assert round(calls_of(0.04, 32), 6) == 0.16
    assert calls_of(3.0, 17) == 0.25  # most recent calls took 3 s: the cap


def test_a_slow_call_is_not_counted_on_to_carry_what_waits_behind_it() -> None:
    clock = Clock()
    queue = _queue(clock)
    _put(queue, range(1))
    queue.take_batch()
    _put(queue, range(1, 40))
    assert queue.wants_another_call(1)  # 39 waiting: more than the one call's next batch
    assert not queue.wants_another_call(4)  # young: four calls carry 39 soon enough
    clock.now += queue.slow_after
    # slow: it carries nothing soon; four more calls take the 39 now, and no fifth
    assert [queue.wants_another_call(n) for n in range(1, 6)] == [True] * 4 + [False]
    assert [len(queue.take_batch()) for _ in range(5)] == [10, 10, 10, 9, 0]


def test_while_a_call_is_slow_younger_calls_are_not_counted_on_either() -> None:
    clock = Clock()
    queue = _queue(clock)
    _put(queue, range(1))
    queue.take_batch()
    clock.now += queue.slow_after
    _put(queue, range(1, 16))
    assert len(queue.take_batch()) == 10  # a young call, to the same slow Pusher
    assert queue.wants_another_call(2)  # the 5 left get a call now, not once it is slow too


def test_a_few_events_behind_a_young_call_wait_for_it() -> None:
    clock = Clock()
    queue = _queue(clock)
    _put(queue, range(1))
    queue.take_batch()
    _put(queue, range(1, 4))
    assert not queue.wants_another_call(1)
    clock.now += queue.slow_after
    assert queue.wants_another_call(1)


async def test_while_a_call_is_slow_a_call_lingers_longer_for_a_full_batch() -> None:
    clock = Clock()
    queue = DeliveryQueue(
        capacity=100, max_calls=8, linger_seconds=0.001, breaker=CircuitBreaker(), clock=clock
    )
    _put(queue, range(1))
    queue.take_batch()
    clock.now += queue.slow_after
    _put(queue, range(1, 2), conversation=8)
    lingering = asyncio.ensure_future(queue.wait_for_full_batch())
    await asyncio.sleep(0.02)  # twenty lingers of a quick Pusher
    assert not lingering.done()  # a call to a slow Pusher is worth filling
    _put(queue, range(2, 11), conversation=8)
    await lingering  # full: it goes


class GatedPusher:
    """Pusher whose calls wait at a gate; records what each call carried."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.at_gate: list[list[int]] = []

    async def trigger(self, event: PusherEvent) -> None:
        await self.trigger_batch([event])

    async def trigger_batch(self, events: list[PusherEvent]) -> None:
        self.at_gate.append([int(e.data) for e in events])
        await self.gate.wait()


class Accepted:
    """The part of `DeliveryOutcomes` a successful call uses."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def lapsed(self, batch: Sequence[Delivery]) -> list[Delivery]:
        return []  # claims are fresh here: the test is about slow calls

    def repeating(self, batch: Sequence[Delivery]) -> None:
        pass

    def call_made(self, outcome: str, seconds: float) -> None:
        pass

    def accepted(self, batch: Sequence[Delivery]) -> None:
        self.batches.append(_ids(batch))


async def test_a_call_turning_slow_starts_calls_for_what_waits_behind_it() -> None:
    clock, pusher, outcomes = Clock(), GatedPusher(), Accepted()
    queue = _queue(clock)
    scheduler = aiojobs.Scheduler(limit=8, pending_limit=8)
    pipeline = DeliveryPipeline(
        queue=queue,
        client=cast(PusherClient, pusher),
        scheduler=scheduler,
        breaker=CircuitBreaker(),
        policy=RetryPolicy(),
        outcomes=cast(DeliveryOutcomes, outcomes),
        tracer=trace.get_tracer(__name__),
    )
    await pipeline.submit(_delivery(0), reserved=False)
    await eventually(lambda: len(pusher.at_gate) == 1)
    for n in range(1, 16):
        await pipeline.submit(_delivery(n), reserved=False)
    assert len(pusher.at_gate) == 1 and len(queue) == 15  # behind the young call
    clock.now += 10  # the call is slow now: nothing is sent, yet it starts two more
    await eventually(lambda: len(pusher.at_gate) == 3)
    assert pusher.at_gate == [[0], list(range(1, 11)), list(range(11, 16))]
    assert len(queue) == 0 and pipeline.calls_in_flight == 3
    pusher.gate.set()
    await eventually(lambda: len(outcomes.batches) == 3)
    await scheduler.close()
