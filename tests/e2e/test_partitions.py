"""Network partitions between real hosts (network namespaces, nft drop rules: packets vanish,
nothing is refused), with clients sending throughout and every acknowledged message checked
at the end."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.delivery.events import MAX_BATCH_EVENTS
from service.settings import DeliverySettings

from .cluster import (
    COMMAND_TIMEOUT,
    CONNECT_TIMEOUT,
    LEASE,
    PG,
    PUSHER,
    A,
    B,
    Cluster,
    Traffic,
    check_stored,
    figures,
)

pytestmark = pytest.mark.e2e

#: the most events one replica has in flight: its concurrent calls, each a full batch
IN_FLIGHT_EVENTS = DeliverySettings().max_concurrent_calls * MAX_BATCH_EVENTS

#: a send may wait for a connection, for one statement, and for that statement's cancellation
#: (at most as long as a connection takes to open): past that it must have answered
WAIT_BOUND = 2 * CONNECT_TIMEOUT + COMMAND_TIMEOUT + 0.5


async def test_replica_postgres_partition_during_sends(cluster: Cluster) -> None:
    """Replica A loses PostgreSQL: its sends answer 503 within the DB timeouts (never 500,
    never a hang), its /readyz turns 503 while B carries on, what A acknowledged before the
    cut is delivered, and A recovers by itself when the path heals."""
    await cluster.start_stack(A, B)
    a, b = cluster.address(A), cluster.address(B)
    traffic = Traffic(cluster.session)
    traffic.start([a, b, a, b])
    try:
        await asyncio.sleep(2)
        # Pusher refuses for a moment: A holds claimed, undelivered work when it is cut off
        await cluster.fault(kind="status", status=503)
        await asyncio.sleep(1)
        cut_at = time.monotonic()
        acked_by_a = {s.message_id for s in traffic.between(0, cut_at, a) if s.answered < cut_at}
        acked_by_a.discard(None)
        await cluster.hosts.cut(A, cluster.address(PG))
        await cluster.clear_faults()

        not_ready_after = await cluster.until(f"{cluster.base(A)}/readyz", 503, timeout=10)
        assert await cluster.status(f"{cluster.base(B)}/readyz") == 200
        await asyncio.sleep(LEASE + 2)  # past A's lease: B may take A's claims meanwhile
        assert await cluster.status(f"{cluster.base(A)}/readyz") == 503
        delivered_during_cut = set(await cluster.events())

        heal_at = time.monotonic()
        await cluster.hosts.heal(A, cluster.address(PG))
        ready_after_heal = await cluster.until(f"{cluster.base(A)}/readyz", 200, timeout=30)
        recovered_after = await cluster.until_sends_succeed(A, traffic, timeout=30)
        await asyncio.sleep(1)
        await traffic.stop()
        events = await cluster.until_delivered(traffic.acknowledged())
    finally:
        await traffic.cancel()
    stored = await check_stored(cluster.database_url, traffic)

    a_cut = traffic.between(cut_at, heal_at, a)
    b_cut = traffic.between(cut_at, heal_at, b)
    statuses = {s.status for s in a_cut}
    longest_on_a = max(s.waited for s in a_cut)
    figures(
        "replica A <-> PostgreSQL partition",
        traffic,
        events,
        recovered_after=recovered_after,
        a_statuses_during_cut=sorted(map(str, statuses)),
        a_sends_during_cut=len(a_cut),
        longest_wait_on_a_during_cut=round(longest_on_a, 2),
        a_not_ready_after=round(not_ready_after, 2),
        a_ready_after_heal=round(ready_after_heal, 2),
        a_acked_before_cut=len(acked_by_a),
        of_which_delivered_during_cut=len(acked_by_a & delivered_during_cut),
        **stored,
    )
    assert 503 in statuses, statuses
    assert statuses <= {200, 503}, statuses  # never 500, never a dropped connection
    assert longest_on_a <= WAIT_BOUND, f"a send to A waited {longest_on_a:.2f}s"
    assert b_cut and all(s.status == 200 for s in b_cut), {s.status for s in b_cut}
    assert acked_by_a <= delivered_during_cut  # A's claims lapsed and B delivered them
    assert not traffic.acknowledged() - set(events)


async def test_replica_pusher_partition_with_claimed_deliveries(cluster: Cluster) -> None:
    """Replica A loses Pusher while it holds claimed deliveries (it can still reach
    PostgreSQL, so it keeps taking sends and renewing its claims): nothing acknowledged is
    lost, its circuit opens and its backlog shows in its metrics, everything is delivered
    after the heal, and the duplicates stay bounded."""
    await cluster.start_stack(A, B)
    a, b = cluster.address(A), cluster.address(B)
    traffic = Traffic(cluster.session)
    traffic.start([a, b, a])
    try:
        await asyncio.sleep(2)
        # slow calls: A has calls in flight and claims queued behind them at the cut
        await cluster.fault(kind="delay", seconds=0.5)
        await asyncio.sleep(1)
        cut_at = time.monotonic()
        await cluster.hosts.cut(A, cluster.address(PUSHER))
        await cluster.clear_faults()

        async def circuit_open() -> dict[str, float]:
            while (found := await cluster.metrics(A)).get("messages_pusher_circuit_open") != 1:
                assert time.monotonic() - cut_at < 15, "A's circuit never opened"
                await asyncio.sleep(0.2)
            return found

        during = await circuit_open()
        opened_after = time.monotonic() - cut_at
        await asyncio.sleep(3)  # sends keep coming to A meanwhile: they are stored, pending
        during = await cluster.metrics(A)
        backlog = during["messages_undelivered"]
        oldest = during["messages_oldest_undelivered_age_seconds"]
        b_events_during = len(await cluster.events())

        heal_at = time.monotonic()
        await cluster.hosts.heal(A, cluster.address(PUSHER))
        await traffic.stop()
        acknowledged = traffic.acknowledged()
        events = await cluster.until_delivered(acknowledged)
        recovered_after = time.monotonic() - heal_at
        while (await cluster.metrics(A)).get("messages_pusher_circuit_open") != 0:
            assert time.monotonic() - heal_at < 15, "A's circuit never closed"
            await asyncio.sleep(0.2)
    finally:
        await traffic.cancel()
    stored = await check_stored(cluster.database_url, traffic)
    a_statuses = {s.status for s in traffic.between(cut_at, heal_at, a)}
    found = figures(
        "replica A <-> Pusher partition",
        traffic,
        events,
        recovered_after=recovered_after,
        circuit_opened_after=round(opened_after, 2),
        backlog_in_metrics=backlog,
        oldest_undelivered_age=round(oldest, 2),
        a_statuses_during_cut=sorted(map(str, a_statuses)),
        events_before_heal=b_events_during,
        **stored,
    )
    assert a_statuses == {200}, a_statuses  # the database is there: sends are fine
    assert backlog > 0 and oldest > 0
    assert found.lost == 0
    # only the calls in flight at the cut may have reached Pusher with their answers lost:
    # at most every concurrent call, full
    assert found.duplicates <= IN_FLIGHT_EVENTS, found.duplicates
