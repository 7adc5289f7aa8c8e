"""The send path's view of delivery: claim a place before storing, deliver after commit.

async mode: the event joins the in-memory pipeline and the response goes out at once.
sync mode (the rollback): the response waits for the Pusher call. Either way, a message that
cannot be handled now (queue full, circuit open) is stored unclaimed and the relay delivers
it; the send never waits for room.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..store.messages import Message
from .mode import DeliveryModeState
from .pipeline import Delivery, DeliveryPipeline


@dataclass(frozen=True, slots=True)
class Claim:
    """Store the message as claimed by `replica` for `lease_seconds`."""

    replica: str
    lease_seconds: float


class FastPath:
    """One send's delivery slot; see `Dispatcher.fast_path`."""

    def __init__(self, dispatcher: Dispatcher, *, sync: bool, reserved: bool) -> None:
        self._dispatcher = dispatcher
        self._sync = sync
        self._reserved = reserved
        self.claim = (
            Claim(dispatcher.pipeline.replica, dispatcher.lease_seconds)
            if sync or reserved
            else None
        )

    async def deliver(self, message: Message, socket_id: str | None, data: str) -> None:
        """Hand the freshly committed message (and its JSON, the event's data) over; in sync
        mode, wait for Pusher."""
        if self.claim is None:
            return  # stored unclaimed: the relay picks it up
        delivery = Delivery.from_request(message, socket_id, data)
        if self._sync:
            await self._dispatcher.pipeline.deliver_now(delivery)
        else:
            self._reserved = False
            await self._dispatcher.pipeline.submit(delivery, reserved=True)

    def close(self) -> None:
        if self._reserved:  # not used: the send failed or was a duplicate
            self._dispatcher.pipeline.unreserve()


class Dispatcher:
    def __init__(
        self, *, pipeline: DeliveryPipeline, mode: DeliveryModeState, lease_seconds: float
    ) -> None:
        self.pipeline = pipeline
        self.mode = mode
        self.lease_seconds = lease_seconds

    @asynccontextmanager
    async def fast_path(self) -> AsyncIterator[FastPath]:
        """Reserve room before the insert, so the post-commit hand-off never has to wait."""
        sync = self.mode.waits_for_pusher
        slot = FastPath(self, sync=sync, reserved=not sync and self.pipeline.reserve())
        try:
            yield slot
        finally:
            slot.close()
