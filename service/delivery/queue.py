"""The events waiting in this replica for a Pusher call: admission, the relay's claim budget,
and which events the next call carries.

In memory only, no I/O: the pipeline asks it for batches and runs the calls. Bounded: at most
`capacity` events wait or are reserved. Every event here belongs to a message row this
replica has claimed in PostgreSQL, so dropping one (crash, shutdown) loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable

from .breaker import CircuitBreaker, State
from .events import MAX_BATCH_EVENTS, Delivery

#: how far into the queue one batch looks for events of conversations not already in flight
_SCAN_LIMIT = 100


class DeliveryQueue:
    def __init__(
        self, *, capacity: int, max_calls: int, linger_seconds: float, breaker: CircuitBreaker
    ) -> None:
        self._capacity = capacity
        self._max_calls = max_calls
        self._linger = linger_seconds
        self._breaker = breaker
        self._waiting: deque[Delivery] = deque()
        self._reserved = 0
        self._in_flight_conversations: set[int] = set()
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
        batches fill by themselves under load and nobody waits when it is quiet."""
        return (
            not self._closed
            and running < self._max_calls
            and len(self._waiting) > running * MAX_BATCH_EVENTS
        )

    def put(self, delivery: Delivery, *, reserved: bool) -> None:
        """Queue an event (in its reserved place, if it had one)."""
        if reserved:
            self._reserved -= 1
        self._waiting.append(delivery)
        if len(self._waiting) >= MAX_BATCH_EVENTS:
            self._batch_full.set()

    def take_batch(self) -> list[Delivery]:
        """Up to 10 events in queue order, skipping conversations that a call is delivering
        right now, so a conversation's events never race each other. They are in flight
        until `finished(batch)`."""
        batch: list[Delivery] = []
        skipped: list[Delivery] = []
        while self._waiting and len(batch) < MAX_BATCH_EVENTS and len(skipped) < _SCAN_LIMIT:
            delivery = self._waiting.popleft()
            if delivery.conversation_id in self._in_flight_conversations:
                skipped.append(delivery)
            else:
                batch.append(delivery)
        self._waiting.extendleft(reversed(skipped))
        self._in_flight_conversations.update(d.conversation_id for d in batch)
        if len(self._waiting) < self._claim_high_water // 2:
            self._claims_wanted.set()
        return batch

    def finished(self, batch: Iterable[Delivery]) -> None:
        """The call carrying `batch` is over: its conversations may go again."""
        self._in_flight_conversations.difference_update(d.conversation_id for d in batch)

    async def wait_for_full_batch(self) -> None:
        """Up to the linger time for a full batch while some, but not enough, events wait
        (like Kafka's linger.ms: a call costs the same CPU on both ends whether it carries one
        event or ten). The pipeline asks only under a stream of sends, never when quiet."""
        if not self._linger or self._closed or not 0 < len(self._waiting) < MAX_BATCH_EVENTS:
            return
        self._batch_full.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._linger):
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
