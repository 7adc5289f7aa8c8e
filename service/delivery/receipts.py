"""Tell the sender's clients that the recipient got their message: one `message-received`
event per first receipt, on the conversation's channel.

Best effort, on purpose: the notice is not in the outbox. A lost one leaves the sender's tick at
"saved" and nothing else; the message itself was delivered with every guarantee, and history
does not depend on it. So it never retries, never holds a claim, and is dropped rather than
queued without bound (or sent into an open circuit).
"""

from __future__ import annotations

import logging
import time

import aiojobs

from ..store.records import FirstReceipt
from ..telemetry.metrics import Metrics
from .breaker import CircuitBreaker, State
from .events import PusherEvent, channel_for, encode_data
from .failures import treatment_of
from .pusher_client import PusherClient, PusherError

log = logging.getLogger(__name__)

#: the event the sender's clients get when the recipient's client posted a receipt
RECEIVED_EVENT_NAME = "message-received"


class ReceiptNotices:
    def __init__(
        self,
        *,
        client: PusherClient,
        scheduler: aiojobs.Scheduler,
        breaker: CircuitBreaker,
        metrics: Metrics,
        backlog: int,
    ) -> None:
        self._client = client
        self._scheduler = scheduler
        self._breaker = breaker
        self._metrics = metrics
        self._backlog = backlog

    async def announce(self, receipt: FirstReceipt) -> None:
        """Queue the notice as a tracked job; never waits for Pusher."""
        if self._breaker.state is State.OPEN or self._scheduler.pending_count >= self._backlog:
            log.info("receipt notice dropped", extra={"message_id": receipt.message_id})
            return
        event = PusherEvent(
            channel=channel_for(receipt.conversation_id),
            name=RECEIVED_EVENT_NAME,
            data=encode_data(receipt.to_json()),
        )
        await self._scheduler.spawn(self._trigger(event), name="receipt-notice")

    async def _trigger(self, event: PusherEvent) -> None:
        started = time.perf_counter()
        try:
            await self._client.trigger(event)
        except PusherError as error:
            outcome = treatment_of(error).outcome
            log.warning("receipt notice failed: %s", error, extra={"channel": event.channel})
        else:
            outcome = "success"
        self._metrics.pusher_requests.labels(outcome).inc()
        self._metrics.pusher_request_duration.observe(time.perf_counter() - started)
