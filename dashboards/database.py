"""Message send — Database: insert latency and throughput, readiness, sends refused for it,
group commit."""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard

from . import promql as q
from . import thresholds as t
from .layout import Section, build_dashboard
from .panels import Query, critical, latency_panel, timeseries_panel

UID = "message-send-database"
TITLE = "Message send — Database"

INSERT = "messages_db_insert_duration_seconds"
BATCH_ROWS = "messages_db_insert_batch_rows"


def dashboard() -> Dashboard:
    return build_dashboard(
        uid=UID,
        title=TITLE,
        description="PostgreSQL as the service sees it: insert latency and throughput, "
        "readiness checks and sends refused while the database is unavailable.",
        sections=[
            Section("Database", [insert_latency(), inserts(), readiness_by_status()]),
            Section("Unavailability", [readiness_failures(), sends_refused()]),
            Section("Group commit", [rows_per_statement()]),
        ],
    )


def insert_latency() -> timeseries.Panel:
    limit = t.DB_INSERT_P99_SECONDS
    return latency_panel(
        "Insert latency",
        INSERT,
        description="One send's insert, from the moment it waits for the database (a pool "
        "connection, or the next group-commit statement) to its commit, so a saturated pool "
        "or a slow statement shows here. The alert fires when p99 exceeds "
        f"{limit * 1000:.0f} ms (line).",
        lines=[critical(limit)],
        width=8,
    )


def inserts() -> timeseries.Panel:
    return timeseries_panel(
        "Inserts/s",
        unit="wps",
        description="Send transactions committed per second, and the new messages among them "
        "(a repeated clientMessageId commits but stores nothing new).",
        queries=[
            Query(q.sum_rate(f"{INSERT}_count"), "send transactions"),
            Query(q.sum_rate("messages_saved_total"), "new messages"),
        ],
        width=8,
    )


def rows_per_statement() -> timeseries.Panel:
    return timeseries_panel(
        "Sends per insert statement",
        unit="short",
        description="Group commit: how many sends one insert statement stored. 1 while "
        "traffic is light (a lone send goes at once); it grows with concurrency, which is "
        "the point: one statement, one commit for many sends. Near SEND_BATCH_MAX_ROWS with "
        "insert latency rising means the database is the bottleneck (RUNBOOK: "
        "MessageDbInsertSlow).",
        queries=[
            Query(
                q.ratio(q.sum_rate(f"{BATCH_ROWS}_sum"), q.sum_rate(f"{BATCH_ROWS}_count")), "mean"
            ),
            Query(q.quantile(0.99, BATCH_ROWS), "p99"),
        ],
        width=24,
    )


def readiness_by_status() -> timeseries.Panel:
    probes = 'route=~"/readyz|/healthz"'
    return timeseries_panel(
        "Health checks/s by status",
        unit="reqps",
        description="/readyz checks the database within 1 s: 503 means it did not answer "
        "and the load balancer takes the replica out. /healthz checks nothing (liveness).",
        queries=[
            Query(
                q.sum_rate(q.REQUEST_COUNT, probes, by=("route", "status")), "{{route}} {{status}}"
            )
        ],
        width=8,
    )


def readiness_failures() -> timeseries.Panel:
    failed = q.sum_rate(q.REQUEST_COUNT, 'route="/readyz"', 'status="503"', by=("instance",))
    return timeseries_panel(
        "Readiness 503s/s by instance",
        unit="reqps",
        description="Failed readiness checks per replica: that replica cannot reach the "
        "database within 1 s. All replicas at once points at the database itself.",
        # every scraped replica reads 0 until its first failure, rather than "No data"
        queries=[Query(f"{failed} or {_replicas_at_zero()}", "{{instance}}")],
    )


def _replicas_at_zero() -> str:
    return f"{q.sum_by(('instance',), q.series('up'))} * 0"


def sends_refused() -> timeseries.Panel:
    refused = q.sum_rate(q.REQUEST_COUNT, q.SEND, 'status="503"')
    return timeseries_panel(
        "Sends refused with 503/s",
        unit="reqps",
        description="POST /api/messages/send answered 503 because the database was "
        "unavailable; the client should retry with the same clientMessageId.",
        queries=[Query(q.or_zero(refused), "503")],
    )


def pool_connections() -> timeseries.Panel:
    """asyncpg pool usage; not on the dashboard until the service exports the metric.

    Enable by adding it to the "Database" section once `messages_db_pool_connections{state=
    "in_use"|"idle"|"max"}` exists (and to the metric list in tests/unit/test_dashboards.py).
    """
    pool = "messages_db_pool_connections"
    return timeseries_panel(
        "Connection pool usage by instance",
        unit="short",
        description="asyncpg pool connections per replica: in use, idle, and the pool's "
        "maximum. In use at the maximum means sends queue for a connection (insert latency "
        "rises with it).",
        queries=[
            Query(
                q.max_by(("instance", "state"), q.series(pool, 'state=~"in_use|idle"')),
                "{{instance}} {{state}}",
            ),
            Query(q.max_by(("instance",), q.series(pool, 'state="max"')), "{{instance}} max"),
        ],
    )
