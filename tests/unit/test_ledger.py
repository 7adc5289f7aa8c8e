"""The delivered ledger keeps what it could not write: nothing Pusher accepted is sent again
because a write failed or was cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from service.delivery.ledger import DeliveredLedger
from service.errors import DatabaseUnavailable
from service.store.outbox import Outbox
from service.store.records import Claim


class RecordingOutbox(Outbox):
    """An in-memory stand-in for the one write the ledger makes (the real one runs against
    PostgreSQL in the integration suite)."""

    def __init__(self) -> None:
        self.claim = Claim("r", 30.0)
        self.written: list[list[int]] = []
        self.failure: BaseException | None = None
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def mark_delivered(self, ids: Sequence[int]) -> None:
        self.entered.set()
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        self.written.append(list(ids))


async def test_ids_survive_an_unavailable_database() -> None:
    outbox = RecordingOutbox()
    ledger = DeliveredLedger(outbox)
    ledger.record([1, 2])
    outbox.failure = DatabaseUnavailable()
    await ledger.flush()
    outbox.failure = None
    ledger.record([3])
    await ledger.flush()
    assert outbox.written == [[1, 2, 3]]


async def test_a_flush_cancelled_at_shutdown_leaves_its_ids_for_the_final_flush() -> None:
    outbox = RecordingOutbox()
    ledger = DeliveredLedger(outbox)
    ledger.record([1, 2])
    outbox.gate.clear()
    flushing = asyncio.create_task(ledger.flush())
    await outbox.entered.wait()
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    outbox.gate.set()
    await ledger.flush()
    assert outbox.written == [[1, 2]]


async def test_the_loop_outlives_an_unexpected_error() -> None:
    outbox = RecordingOutbox()
    ledger = DeliveredLedger(outbox, interval=0.01)
    outbox.failure = RuntimeError("a bug in one round")
    ledger.record([1])
    loop = asyncio.create_task(ledger.run())
    await outbox.entered.wait()
    await asyncio.sleep(0.03)
    assert not loop.done()  # still running after the failed round
    outbox.failure = None
    for _ in range(100):
        if outbox.written:
            break
        await asyncio.sleep(0.01)
    loop.cancel()
    assert outbox.written == [[1]]  # kept through the failure, written by a later round
