"""A PostgreSQL failover under steady sends: a primary with a synchronous standby (streaming
replication set up here with pg_basebackup), the service connected through a multi-host
DATABASE_URL with target_session_attrs=read-write. The primary's host vanishes (every path
cut: packets dropped), the standby is promoted: sends answer 503 during the switch, succeed
again against the new primary without a restart, and every acknowledged send is in the new
primary and reaches Pusher."""

from __future__ import annotations

import asyncio
import itertools
import time

import asyncpg
import pytest

from service.devtools.postgres import LocalPostgres

from .cluster import (
    COMMAND_TIMEOUT,
    CONNECT_TIMEOUT,
    DATABASE,
    PG,
    PG2,
    PG_PORT,
    A,
    B,
    Cluster,
    NamespacedPostgres,
    Traffic,
    check_stored,
    figures,
    postgres_on,
)

pytestmark = pytest.mark.e2e

#: how long "the operator" (Patroni, CloudNativePG, a person) takes to promote the standby
DETECTION = 1.0


async def _standby_of(cluster: Cluster, primary: NamespacedPostgres) -> NamespacedPostgres:
    standby = postgres_on(PG2, cluster.address(PG2), cluster.tmp / PG2)
    standby.data_dir.mkdir(parents=True)
    LocalPostgres._hand_to_system_user(standby.data_dir)
    source = ("-h", cluster.address(PG), "-p", str(PG_PORT), "-U", "postgres")
    args = ("-D", str(standby.data_dir), "-R", "-X", "stream", "--checkpoint=fast")
    await asyncio.to_thread(standby.run_tool, "pg_basebackup", *source, *args)
    # the primary keeps its socket in its data folder: the copy's lock file is not ours
    (standby.data_dir / f".s.PGSQL.{PG_PORT}.lock").unlink(missing_ok=True)
    await asyncio.to_thread(standby.start)
    cluster.servers.append(standby)
    connection = await asyncpg.connect(primary.url)
    try:  # every commit waits for the standby to have it
        await connection.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        await connection.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 20
        while await connection.fetchval("SELECT sync_state FROM pg_stat_replication") != "sync":
            assert time.monotonic() < deadline, "the standby never became synchronous"
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    return standby


async def test_postgres_failover_under_sends(cluster: Cluster) -> None:
    primary = await cluster.start_postgres(PG)
    await cluster.migrate(primary)
    standby = await _standby_of(cluster, primary)
    hosts = f"{cluster.address(PG)}:{PG_PORT},{cluster.address(PG2)}:{PG_PORT}"
    cluster_url = f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"
    await cluster.start_sandbox()
    await cluster.start_replicas(A, B, database_url=cluster_url)
    a, b = cluster.address(A), cluster.address(B)
    traffic = Traffic(cluster.session)
    traffic.start([a, b, a, b])
    try:
        await asyncio.sleep(2)
        cut_at = time.monotonic()
        await cluster.hosts.isolate(PG)  # the primary's machine is gone
        await asyncio.sleep(DETECTION)
        promoted_at = time.monotonic()
        await asyncio.to_thread(
            standby.run_tool, "pg_ctl", "-D", str(standby.data_dir), "-w", "promote"
        )
        a_back = await cluster.until_sends_succeed(A, traffic, timeout=30)
        b_back = await cluster.until_sends_succeed(B, traffic, timeout=30)
        back_at = time.monotonic()
        await asyncio.sleep(2)
        await traffic.stop()
        events = await cluster.until_delivered(traffic.acknowledged())
    finally:
        await traffic.cancel()
    new_primary_url = standby.url_for(DATABASE)
    stored = await check_stored(new_primary_url, traffic)

    after_cut = [s for s in traffic.sends if s.answered >= cut_at]
    failed = [s for s in after_cut if s.status != 200]
    statuses = {s.status for s in after_cut}
    first_failure = min(s.answered for s in failed) if failed else cut_at
    last_failure = max(s.answered for s in failed) if failed else cut_at
    longest = max(s.waited for s in after_cut)
    # the outage as clients saw it: the longest stretch in which no send was answered 200
    successes = sorted(s.answered for s in traffic.sends if s.status == 200)
    no_success = max(later - earlier for earlier, later in itertools.pairwise(successes))
    found = figures(
        "PostgreSQL failover",
        traffic,
        events,
        recovered_after=max(a_back, b_back),
        longest_without_a_200=round(no_success, 2),
        first_to_last_503=round(last_failure - first_failure, 2),
        cut_to_last_503=round(last_failure - cut_at, 2),
        promote_to_sends_ok=round(back_at - promoted_at, 2),
        failed_sends=len(failed),
        statuses_after_cut=sorted(map(str, statuses)),
        **stored,
    )
    assert failed, "no send failed: the primary was never really gone"
    assert statuses <= {200, 503}, statuses
    # a send waits for a connection (every host at once), one statement and its cancellation
    assert longest <= 2 * CONNECT_TIMEOUT + COMMAND_TIMEOUT + 0.5, longest
    assert found.lost == 0
