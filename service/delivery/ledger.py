"""Pusher's acceptances, written to the database in coalesced batches.

One `UPDATE … SET delivered_at` per Pusher call was a write (and a WAL flush) per call; under
load this writes once per interval instead. An acceptance not yet written when a process dies
is delivered again after its lease (at-least-once; clients de-duplicate by id), so the
interval is kept short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..errors import DatabaseUnavailable
from ..store.outbox import Outbox
from .loops import survive

log = logging.getLogger(__name__)


class DeliveredLedger:
    def __init__(self, outbox: Outbox, *, interval: float = 0.05, max_ids: int = 2000) -> None:
        self._outbox = outbox
        self._interval = interval
        self._max_ids = max_ids
        self._ids: list[int] = []
        self._full = asyncio.Event()

    def record(self, ids: list[int]) -> None:
        self._ids.extend(ids)
        if len(self._ids) >= self._max_ids:
            self._full.set()

    async def flush(self) -> None:
        ids, self._ids = self._ids, []
        self._full.clear()
        if not ids:
            return
        try:
            await self._outbox.mark_delivered(ids)
        except DatabaseUnavailable:
            # keep them for the next flush; if the process dies first, leases run out and the
            # relay delivers them again (a duplicate, never a loss)
            self._ids = ids + self._ids
            log.warning("could not record deliveries yet: database unavailable")
        except BaseException:
            # a bug, or the loop cancelled at shutdown: the next flush (the final one) has them
            self._ids = ids + self._ids
            raise

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._full.wait()
            await survive(self.flush(), "delivered ledger")
