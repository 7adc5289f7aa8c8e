"""PostgreSQL restarts under load while the relay is draining a backlog: the relay resumes by
itself, nothing acknowledged is lost, and no message ends in a wrong state (marked delivered
without reaching Pusher, dead-lettered, or left pending)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from .cluster import A, B, Cluster, Traffic, check_stored, figures

pytestmark = pytest.mark.e2e

MARKED_DELIVERED = "SELECT id FROM messages WHERE delivered_at IS NOT NULL"
NOT_DELIVERED = "SELECT count(*) FROM messages WHERE delivered_at IS NULL"


async def test_postgres_restart_while_the_relay_drains(cluster: Cluster) -> None:
    server = await cluster.start_stack(A, B)
    database_url = cluster.database_url
    a, b = cluster.address(A), cluster.address(B)
    traffic = Traffic(cluster.session)
    traffic.start([a, b, a, b])
    try:
        await asyncio.sleep(1)
        await cluster.fault(kind="status", status=503)  # Pusher down: a backlog builds
        await asyncio.sleep(3)
        await cluster.fault(kind="delay", seconds=0.2)  # back, but slow: the drain takes time
        deadline = time.monotonic() + 10
        while (backlog := (await cluster.metrics(A))["messages_undelivered"]) < 50:
            assert time.monotonic() < deadline, f"no backlog to drain: {backlog}"
            await asyncio.sleep(0.1)
        restart_at = time.monotonic()
        await asyncio.to_thread(server.stop)  # fast shutdown: sessions are cut
        await asyncio.to_thread(server.start)
        restarted_in = time.monotonic() - restart_at
        recovered_after = max(
            [await cluster.until_sends_succeed(host, traffic, timeout=20) for host in (A, B)]
        )
        await cluster.clear_faults()
        await asyncio.sleep(2)
        await traffic.stop()
        events = await cluster.until_delivered(traffic.acknowledged())
        stored = await check_stored(database_url, traffic)
        db = await asyncpg.connect(database_url)
        try:
            deadline = time.monotonic() + 20
            while (pending := await db.fetchval(NOT_DELIVERED)) != 0:  # unacknowledged too
                assert time.monotonic() < deadline, f"{pending} stored messages never delivered"
                await asyncio.sleep(0.2)
            marked = {row["id"] for row in await db.fetch(MARKED_DELIVERED)}
            dead = await db.fetchval(
                "SELECT count(*) FROM messages WHERE dead_lettered_at IS NOT NULL"
            )
        finally:
            await db.close()
        events = await cluster.events()
    finally:
        await traffic.cancel()

    restart_window = traffic.between(restart_at - 3, restart_at + restarted_in + 3)
    statuses = {s.status for s in restart_window}
    found = figures(
        "PostgreSQL restart while the relay drains",
        traffic,
        events,
        recovered_after=recovered_after,
        backlog_at_restart=backlog,
        restart_took=round(restarted_in, 2),
        statuses_around_restart=sorted(map(str, statuses)),
        failed_sends=sum(1 for s in traffic.sends if s.status != 200),
        dead_letters=dead,
        **stored,
    )
    assert backlog >= 50
    assert statuses <= {200, 503}, statuses
    assert marked <= set(events), "marked delivered but never reached Pusher"
    assert dead == 0
    assert found.lost == 0
