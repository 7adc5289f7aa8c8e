"""A replica frozen by the kernel (SIGSTOP) longer than its lease, then resumed as if nothing
had happened: the other replica takes its claims over and delivers them; the woken one's stale
work must undo nothing (no delivered message made pending again, no delivery record changed,
no dead letter), and the duplicates it causes stay within what it held when it froze."""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import pytest

from .cluster import LEASE, A, B, Cluster, Traffic, check_stored, figures

pytestmark = pytest.mark.e2e

#: delivery records, to compare before and after the frozen replica wakes
DELIVERED = """
SELECT id, delivered_at, delivered_by, delivery_attempts FROM messages
WHERE delivered_at IS NOT NULL
"""
#: pending messages still claimed: what a replica holds
HELD = """
SELECT id FROM messages
WHERE claimed_by IS NOT NULL AND delivered_at IS NULL AND dead_lettered_at IS NULL
"""


async def test_frozen_replica_wakes_after_its_lease(cluster: Cluster) -> None:
    await cluster.start_stack(A, B)
    database_url = cluster.database_url
    a, b = cluster.address(A), cluster.address(B)
    traffic = Traffic(cluster.session)
    traffic.start([a, b, a])
    db = await asyncpg.connect(database_url)
    try:
        await asyncio.sleep(2)
        # a slow Pusher: A has calls in flight and claimed events queued when it freezes
        await cluster.fault(kind="delay", seconds=0.4)
        await asyncio.sleep(1)
        cluster.signal(A, signal.SIGSTOP)
        frozen_at = time.monotonic()
        held = {row["id"] for row in await db.fetch(HELD)}
        acked_before = {s.message_id for s in traffic.sends if s.message_id is not None}
        await cluster.clear_faults()

        await asyncio.sleep(LEASE + 2)  # A's lease runs out; B's relay takes its claims
        taken_over = set(await cluster.events())
        before_wake = {row["id"]: dict(row) for row in await db.fetch(DELIVERED)}
        woken_at = time.monotonic()
        cluster.signal(A, signal.SIGCONT)
        recovered_after = await cluster.until_sends_succeed(A, traffic, timeout=20)
        await asyncio.sleep(2)  # A's stale calls and writes play out meanwhile
        await traffic.stop()
        events = await cluster.until_delivered(traffic.acknowledged())
        stored = await check_stored(database_url, traffic)
        after = {row["id"]: dict(row) for row in await db.fetch(DELIVERED)}
        # queued events A found lapsed on waking, dropped instead of sent a second time
        dropped = (await cluster.metrics(A))["messages_delivery_claims_lapsed_total"]
        dead = await db.fetchval("SELECT count(*) FROM messages WHERE dead_lettered_at IS NOT NULL")
    finally:
        await traffic.cancel()
        await db.close()

    changed = [id_ for id_, record in before_wake.items() if after.get(id_) != record]
    found = figures(
        "replica A frozen past its lease",
        traffic,
        events,
        recovered_after=recovered_after,
        frozen_for=round(woken_at - frozen_at, 2),
        held_when_frozen=len(held),
        acked_before_freeze=len(acked_before),
        of_which_delivered_while_frozen=len(acked_before & taken_over),
        delivery_records_changed_after_wake=len(changed),
        lapsed_events_dropped_by_a=dropped,
        dead_letters=dead,
        **stored,
    )
    assert held, "A held no claims when it froze: the test proves nothing"
    assert acked_before <= taken_over, "B did not deliver what A held while A was frozen"
    assert not changed, f"delivery records changed by the woken replica: {changed[:10]}"
    assert dead == 0
    assert found.lost == 0
    # what A held when it froze may go out twice (B took it over, A's own calls resume)
    assert found.duplicates <= len(held), (found.duplicates, len(held))
