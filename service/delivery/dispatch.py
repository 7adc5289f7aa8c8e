"""The send path's view of delivery: hold a place before storing, hand over after commit.

async mode: the event joins the in-memory queue and the response goes out at once.
sync mode (the rollback): the response waits for the Pusher call. Either way, a message that
cannot be handled now (queue full, circuit open) is stored unclaimed and the relay delivers
it; the send never waits for room.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..store.records import Claim, Message
from .events import Delivery
from .mode import DeliveryModeState
from .pipeline import DeliveryPipeline
from .queue import DeliveryQueue


class DeliverySlot:
    """One send's place in delivery; see `Dispatcher.slot`."""

    def __init__(
        self, queue: DeliveryQueue, pipeline: DeliveryPipeline, claim: Claim, *, sync: bool
    ) -> None:
        self._queue = queue
        self._pipeline = pipeline
        self._sync = sync
        self._reserved = not sync and queue.reserve()
        #: store the message claimed by this replica; None: unclaimed, for the relay
        self.claim = claim if sync or self._reserved else None

    async def hand_over(self, message: Message, socket_id: str | None, data: str) -> None:
        """Give the freshly committed message (and its JSON, the event's data) to delivery;
        in sync mode, wait for Pusher."""
        if self.claim is None:
            return  # stored unclaimed: the relay picks it up
        delivery = Delivery.from_request(message, socket_id, data)
        if self._sync:
            await self._pipeline.send_now(delivery)
        else:
            self._reserved = False
            await self._pipeline.submit(delivery, reserved=True)

    def close(self) -> None:
        if self._reserved:  # not used: the send failed or was a resend
            self._queue.unreserve()


class Dispatcher:
    def __init__(
        self,
        *,
        queue: DeliveryQueue,
        pipeline: DeliveryPipeline,
        mode: DeliveryModeState,
        claim: Claim,
    ) -> None:
        self._queue = queue
        self._pipeline = pipeline
        self.mode = mode
        self._claim = claim

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[DeliverySlot]:
        """Reserve room before the insert, so the hand-over after commit never waits."""
        slot = DeliverySlot(
            self._queue, self._pipeline, self._claim, sync=self.mode.waits_for_pusher
        )
        try:
            yield slot
        finally:
            slot.close()
