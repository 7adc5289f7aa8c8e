"""Real service processes: SIGKILL mid-burst, SIGTERM past the deadline, replicas sharing a
backlog. Every message that got a 200 must reach Pusher."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import eventually
from .processes import ServiceProcess

pytestmark = pytest.mark.e2e

QUICK = {
    "DELIVERY_LEASE_SECONDS": "1.5",
    "RELAY_POLL_SECONDS": "0.1",
    "DELIVERY_RETRY_BASE_SECONDS": "0.1",
    "DELIVERY_RETRY_CAP_SECONDS": "0.5",
    "CIRCUIT_COOLDOWN_SECONDS": "0.3",
    "LOG_LEVEL": "WARNING",
}


def delivered(sandbox: Sandbox) -> list[int]:
    return [json.loads(e.data)["id"] for e in sandbox.state.events]


@pytest.fixture
async def processes() -> AsyncIterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        await process.stop()


async def test_sigkill_mid_burst_with_slow_pusher_loses_nothing(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection, processes: list[ServiceProcess]
) -> None:
    first = ServiceProcess(database_url, sandbox, **QUICK)
    processes.append(await first.start())
    sandbox.state.faults.set(Fault("delay", seconds=1.0))
    async with aiohttp.ClientSession() as session:
        messages = await asyncio.gather(
            *(first.send(session, 1 + n % 5, 10 + n % 7, f"m{n}") for n in range(60))
        )
    acknowledged = {m["id"] for m in messages}
    first.signal(signal.SIGKILL)
    await first.wait()
    assert not acknowledged <= set(delivered(sandbox))  # the kill left work undone
    sandbox.state.faults.clear()
    second = ServiceProcess(database_url, sandbox, **QUICK)
    processes.append(await second.start())
    await eventually(lambda: acknowledged <= set(delivered(sandbox)), timeout=30)


async def test_sigterm_past_the_deadline_exits_zero_and_hands_work_back(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection, processes: list[ServiceProcess]
) -> None:
    first = ServiceProcess(database_url, sandbox, SHUTDOWN_DEADLINE_SECONDS="1", **QUICK)
    processes.append(await first.start())
    sandbox.state.faults.set(Fault("hold"))
    async with aiohttp.ClientSession() as session:
        messages = [await first.send(session, 1, 2, f"m{n}") for n in range(20)]
    await eventually(lambda: sandbox.state.faults.held >= 1)
    first.signal(signal.SIGTERM)
    assert await first.wait(timeout=15) == 0
    stderr = await first.stderr()
    assert "Pusher trigger failed" in stderr  # the give-up is logged, with message ids
    pending = await db.fetchval(
        "SELECT count(*) FROM messages WHERE delivered_at IS NULL AND claimed_by IS NOT NULL"
    )
    assert pending == 0  # released at once, not left to a lease
    sandbox.state.faults.release()
    second = ServiceProcess(database_url, sandbox, **QUICK)
    processes.append(await second.start())
    await eventually(lambda: {m["id"] for m in messages} <= set(delivered(sandbox)), timeout=30)


async def test_two_replicas_share_a_backlog_and_survive_losing_one(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection, processes: list[ServiceProcess]
) -> None:
    replicas = [ServiceProcess(database_url, sandbox, **QUICK) for _ in range(2)]
    for replica in replicas:
        processes.append(await replica.start())
    sandbox.state.faults.set(Fault("status", status=503))  # Pusher down: a backlog builds up
    async with aiohttp.ClientSession() as session:
        messages = await asyncio.gather(
            *(replicas[n % 2].send(session, 1 + n % 20, 100 + n % 13, f"m{n}") for n in range(400))
        )
    ids = {m["id"] for m in messages}
    assert await db.fetchval("SELECT count(*) FROM messages WHERE delivered_at IS NULL") > 300
    sandbox.state.faults.set(Fault("delay", seconds=0.2))  # back, but slow: draining takes a while
    await eventually(lambda: len(set(delivered(sandbox))) >= 100, timeout=30)
    # Kill one only once both have recorded deliveries: whichever replica's circuit closes
    # first can deliver the first hundred alone (as one CI run showed), and the kill must
    # find both at work.
    await _until_both_replicas_recorded(db, timeout=30)
    replicas[0].signal(signal.SIGKILL)
    await replicas[0].wait()
    await eventually(lambda: ids <= set(delivered(sandbox)), timeout=60)
    deliverers = await db.fetch(
        "SELECT DISTINCT delivered_by FROM messages WHERE delivered_by IS NOT NULL"
    )
    assert len(deliverers) == 2  # both replicas took part
    # Pusher accepted the killed replica's calls in flight, but it died before recording them:
    # those are delivered again (at-least-once). At most its concurrent calls x 10 events.
    duplicates = len(delivered(sandbox)) - len(set(delivered(sandbox)))
    assert duplicates <= 8 * 10


async def _until_both_replicas_recorded(db: asyncpg.Connection, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await db.fetchval(_REPLICAS_THAT_DELIVERED) < 2:
        assert asyncio.get_running_loop().time() < deadline, "only one replica delivered"
        await asyncio.sleep(0.01)


_REPLICAS_THAT_DELIVERED = "SELECT count(DISTINCT delivered_by) FROM messages"
