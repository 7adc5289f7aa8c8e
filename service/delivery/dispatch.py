"""Hand a stored message to Pusher: in a tracked background job (async) or inline (sync)."""

from __future__ import annotations

import asyncio
import logging

from aiojobs import Scheduler

from ..store.messages import Message
from .events import PusherEvent
from .mode import DeliveryModeState
from .pusher_client import PusherClient, PusherError

log = logging.getLogger(__name__)


class Dispatcher:
    """Decides how a freshly stored message reaches Pusher; never raises into the request."""

    def __init__(
        self, *, client: PusherClient, scheduler: Scheduler, mode: DeliveryModeState
    ) -> None:
        self._client = client
        self._scheduler = scheduler
        self._mode = mode

    @property
    def mode(self) -> DeliveryModeState:
        return self._mode

    async def dispatch(self, message: Message, socket_id: str | None) -> None:
        """Deliver now (sync mode) or schedule delivery and return at once (async mode)."""
        event = PusherEvent.for_message(message, socket_id)
        if self._mode.waits_for_pusher:
            await self.deliver(message.id, event)
            return
        if self._scheduler.pending_count >= self._scheduler.pending_limit:
            # aiojobs' spawn would wait for a free slot: a send must never block on that.
            log.warning(
                "Pusher trigger failed: background delivery queue is full",
                extra={"message_id": message.id, "outcome": "overflow"},
            )
            return
        await self._scheduler.spawn(self.deliver(message.id, event), name=f"deliver-{message.id}")

    async def deliver(self, message_id: int, event: PusherEvent) -> bool:
        """One trigger; a failure is logged with the message id and swallowed."""
        try:
            await self._client.trigger(event)
        except PusherError as exc:
            log.warning(
                "Pusher trigger failed for message %s: %s",
                message_id,
                exc,
                extra={"message_id": message_id, "outcome": exc.outcome},
            )
            return False
        except asyncio.CancelledError:
            log.warning(
                "Pusher trigger failed for message %s: cancelled at shutdown",
                message_id,
                extra={"message_id": message_id, "outcome": "cancelled"},
            )
            raise
        return True
