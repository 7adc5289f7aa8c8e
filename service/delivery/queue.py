"""The events waiting in this replica for a Pusher call: admission, the relay's claim budget,
and which events the next call carries.

In memory only, no I/O: the pipeline asks it for batches and runs the calls. Bounded: at most
`capacity` events wait or are reserved. Every event here belongs to a message row this
replica has claimed in PostgreSQL, so dropping one (crash, shutdown) loses nothing.

A conversation's events wait while a call of it is in flight, so they reach Pusher in order,
but only while that call is young: once it is slow (Pusher is slow), they go in further calls
at once rather than a round trip later, and clients restore the order by `seq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable

from .breaker import CircuitBreaker, State
from .events import MAX_BATCH_EVENTS, Delivery

#: how far into the queue one batch looks for events of conversations not already in flight
_SCAN_LIMIT = 100
#: a call in flight is slow past this many times the median of recent calls, bounded (seconds):
#: a healthy Pusher answers in a few ms, so its calls never are, and under a slow one the
#: events behind a call wait at most the cap for it
_SLOW_FACTOR, _SLOW_FLOOR, _SLOW_CAP = 4, 0.1, 0.25
#: the recent calls that median is taken over
_RECENT_CALLS = 32


class Batch(list[Delivery]):
    """The events of one Pusher call, in queue order, and when the queue gave them out."""

    __slots__ = ("started",)

    def __init__(self, deliveries: Iterable[Delivery] = (), *, started: float = 0.0) -> None:
        super().__init__(deliveries)
        self.started = started


class _CallsInFlight:
    """When each call in flight started, by conversation, and how long calls take lately:
    which calls are slow, so that the events behind them need not wait for them."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._started: list[float] = []
        #: the start of each call in flight carrying the conversation, oldest first
        self._by_conversation: dict[int, list[float]] = {}
        self._durations: deque[float] = deque(maxlen=_RECENT_CALLS)
        #: until calls have been timed, the cap: order is kept while nothing is known
        self.slow_after = _SLOW_CAP

    def __len__(self) -> int:
        return len(self._started)

    def began(self, batch: Batch) -> None:
        self._started.append(batch.started)
        for conversation in {d.conversation_id for d in batch}:
            self._by_conversation.setdefault(conversation, []).append(batch.started)

    def ended(self, batch: Batch) -> None:
        self._started.remove(batch.started)
        for conversation in {d.conversation_id for d in batch}:
            starts = self._by_conversation[conversation]
            starts.remove(batch.started)
            if not starts:
                del self._by_conversation[conversation]
        self._durations.append(self._clock() - batch.started)
        typical = statistics.median(self._durations)
        self.slow_after = min(_SLOW_CAP, max(_SLOW_FLOOR, _SLOW_FACTOR * typical))

    def slow(self) -> bool:
        """Whether a call in flight is slow."""
        since = self._clock() - self.slow_after
        return any(started <= since for started in self._started)

    def held_conversations(self) -> set[int]:
        """The conversations whose events must wait: they have calls in flight, all young."""
        since = self._clock() - self.slow_after
        return {c for c, starts in self._by_conversation.items() if starts[0] > since}


class DeliveryQueue:
    def __init__(
        self,
        *,
        capacity: int,
        max_calls: int,
        linger_seconds: float,
        breaker: CircuitBreaker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._capacity = capacity
        self._max_calls = max_calls
        self._linger = linger_seconds
        self._breaker = breaker
        self._waiting: deque[Delivery] = deque()
        self._reserved = 0
        self._in_flight = _CallsInFlight(clock)
        self._closed = False
        #: the relay keeps about two rounds of calls queued, no more: claiming more would
        #: only park rows here that other replicas could be delivering, so replicas share a
        #: backlog in proportion to their delivery speed
        self._claim_high_water = 2 * max_calls * MAX_BATCH_EVENTS
        self._claims_wanted = asyncio.Event()
        self._batch_full = asyncio.Event()

    def __len__(self) -> int:
        """Events waiting for a call (not those in flight)."""
        return len(self._waiting)

    # -- admission ---------------------------------------------------------------------------

    def room(self) -> int:
        return self._capacity - len(self._waiting) - self._reserved

    def reserve(self) -> bool:
        """Hold a place for one event before its message is stored; False when the queue is
        full, the circuit is open or the queue is closed (the relay will deliver it)."""
        if self._closed or self.room() <= 0 or self._breaker.state is State.OPEN:
            return False
        self._reserved += 1
        return True

    def unreserve(self) -> None:
        """The reserved place was not used (the send failed, or was a resend)."""
        self._reserved -= 1

    def claim_budget(self) -> int:
        """How many events the relay should claim from the database now."""
        return max(0, min(self.room(), self._claim_high_water - len(self._waiting)))

    async def wait_until_claims_wanted(self, timeout: float) -> None:
        """Until the queue has drained to half of the claim high-water mark (or `timeout`)."""
        self._claims_wanted.clear()
        if len(self._waiting) < self._claim_high_water // 2:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._claims_wanted.wait()

    # -- batches -----------------------------------------------------------------------------

    def wants_another_call(self, running: int) -> bool:
        """One call at a time while it keeps up; another only when more than a full batch per
        running call is waiting. Events that arrive during a call wait for the next one, so
        batches fill by themselves under load and nobody waits when it is quiet. While a call
        is slow (so is Pusher), no call in flight is counted on to come back soon: what waits
        gets calls of its own, up to `max_calls`."""
        coming_back = running - (len(self._in_flight) if self._in_flight.slow() else 0)
        return (
            not self._closed
            and running < self._max_calls
            and len(self._waiting) > coming_back * MAX_BATCH_EVENTS
        )

    @property
    def calls_in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def slow_after(self) -> float:
        """Seconds after which a call in flight counts as slow (see `_CallsInFlight`)."""
        return self._in_flight.slow_after

    def seconds_until_slow(self, batch: Batch) -> float:
        """How long until the call carrying `batch` counts as slow (≤ 0: it does)."""
        return batch.started + self._in_flight.slow_after - self._clock()

    def put(self, delivery: Delivery, *, reserved: bool) -> None:
        """Queue an event (in its reserved place, if it had one)."""
        if reserved:
            self._reserved -= 1
        self._waiting.append(delivery)
        if len(self._waiting) >= MAX_BATCH_EVENTS:
            self._batch_full.set()

    def take_batch(self) -> Batch:
        """Up to 10 events in queue order, skipping conversations that a young call is
        delivering right now, so a conversation's events do not race each other while Pusher
        is quick. They are in flight until `finished(batch)`."""
        batch = Batch(started=self._clock())
        skipped: list[Delivery] = []
        held = self._in_flight.held_conversations()
        while self._waiting and len(batch) < MAX_BATCH_EVENTS and len(skipped) < _SCAN_LIMIT:
            delivery = self._waiting.popleft()
            if delivery.conversation_id in held:
                skipped.append(delivery)
            else:
                batch.append(delivery)
        self._waiting.extendleft(reversed(skipped))
        if batch:
            self._in_flight.began(batch)
        if len(self._waiting) < self._claim_high_water // 2:
            self._claims_wanted.set()
        return batch

    def finished(self, batch: Batch) -> None:
        """The call carrying `batch` is over: its conversations may go again."""
        self._in_flight.ended(batch)

    async def wait_for_full_batch(self) -> None:
        """Up to the linger time for a full batch while some, but not enough, events wait
        (like Kafka's linger.ms: a call costs the same CPU on both ends whether it carries one
        event or ten). The pipeline asks only under a stream of sends (its last call carried
        events, or other calls are in flight), never when quiet. While a call is slow, up to
        the slow threshold instead: a call to a slow Pusher holds one of the `max_calls` for
        a round trip, so spending them on an event each would leave later ones waiting."""
        if not self._linger or self._closed or not 0 < len(self._waiting) < MAX_BATCH_EVENTS:
            return
        linger = self._linger
        if self._in_flight.slow():
            linger = max(linger, self._in_flight.slow_after)
        self._batch_full.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(linger):
                await self._batch_full.wait()

    def close(self) -> list[Delivery]:
        """Admit nothing more; return what was waiting (to hand back to the database)."""
        self._closed = True
        self._batch_full.set()  # a lingering call stops waiting for a batch that won't come
        waiting = list(self._waiting)
        self._waiting.clear()
        return waiting

    @property
    def closed(self) -> bool:
        return self._closed
