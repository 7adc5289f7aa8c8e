"""Message send — Pusher delivery: calls to Pusher, delivery latency, backlog, breaker, probe."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, statetimeline, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard

from . import promql as q
from . import thresholds as t
from .layout import Section, build_dashboard
from .panels import (
    CRITICAL,
    GOOD,
    Query,
    State,
    critical,
    latency_panel,
    per_instance,
    slo_panel,
    state_timeline_panel,
    timeseries_panel,
    warning,
)

UID = "message-send-delivery"
TITLE = "Message send — Pusher delivery"

PUSHER_CALLS = "messages_pusher_requests_total"
FAILED_CALL = 'outcome=~"error|timeout"'
DELIVERY = "messages_delivery_latency_seconds"


def dashboard() -> Dashboard:
    return build_dashboard(
        uid=UID,
        title=TITLE,
        description="Delivery of stored messages to Pusher: calls, latency, retries, "
        "circuit breaker, backlog and dead letters.",
        sections=[
            Section("Pusher calls", [calls_by_outcome(), error_ratio(), call_latency()]),
            Section(
                "Delivery latency",
                [delivery_latency(), delivered_within_slo(), pusher_success_slo()],
            ),
            Section("Pusher availability", [circuit_state(), pusher_up(), retries()]),
            Section("Background jobs", [jobs_active(), jobs_pending()]),
            Section("Backlog", [undelivered(), oldest_undelivered_age(), dead_letters()]),
        ],
    )


def calls_by_outcome() -> timeseries.Panel:
    return timeseries_panel(
        "Pusher calls/s by outcome",
        unit="reqps",
        description="HTTP calls to Pusher per second (a batch call counts once), by outcome.",
        queries=[Query(q.sum_rate(PUSHER_CALLS, by=("outcome",)), "{{outcome}}")],
        width=8,
    )


def error_ratio() -> timeseries.Panel:
    return timeseries_panel(
        "Pusher error ratio",
        unit="percentunit",
        description="Share of Pusher calls ending in an error or a timeout. Warning above "
        f"{t.PUSHER_ERROR_RATIO_WARNING:.0%}, critical above "
        f"{t.PUSHER_ERROR_RATIO_CRITICAL:.0%} (lines).",
        queries=[Query(q.rate_share(PUSHER_CALLS, part=FAILED_CALL), "error + timeout share")],
        lines=[warning(t.PUSHER_ERROR_RATIO_WARNING), critical(t.PUSHER_ERROR_RATIO_CRITICAL)],
        width=8,
    )


def call_latency() -> timeseries.Panel:
    return latency_panel(
        "Pusher call latency",
        q.PUSHER_CALL_DURATION,
        description="Duration of one HTTP call to Pusher, including timeouts.",
        width=8,
    )


def delivery_latency() -> timeseries.Panel:
    ack = t.DELIVERY_PUSHER_ACK_P95_SECONDS
    return latency_panel(
        "Delivery latency by stage",
        DELIVERY,
        description="From the message's commit to Pusher's acceptance (pusher_ack) and to the "
        f"recipient's receipt (client_receipt). Lines: pusher_ack p95 under {ack * 1000:.0f} ms "
        f"(design goal); {t.DELIVERY_SLO_SHARE:.0%} of messages within "
        f"{t.DELIVERY_SLO_SECONDS:g} s (SLO).",
        by="stage",
        lines=[warning(ack), critical(t.DELIVERY_SLO_SECONDS)],
    )


def delivered_within_slo() -> stat.Panel:
    seconds = t.DELIVERY_SLO_SECONDS
    return slo_panel(
        "Delivered within 1 s (SLO 99 %)",
        objective=t.DELIVERY_SLO_SHARE,
        description=f"Share of messages delivered within {seconds:g} s of their commit, per "
        f"stage, over the dashboard's time range and every replica of the namespace. Red under "
        f"{t.DELIVERY_SLO_SHARE:.0%}.",
        query=Query(q.share_within(DELIVERY, seconds, by=("stage",)), "{{stage}}"),
        decimals=2,
    )


def pusher_success_slo() -> stat.Panel:
    succeeded = q.range_share(PUSHER_CALLS, part='outcome="success"')
    return slo_panel(
        "Pusher call success (SLO 99.9 %)",
        objective=t.PUSHER_SUCCESS_SLO,
        description="Share of Pusher calls that succeeded over the dashboard's time range, "
        f"every replica of the namespace. Red under {t.PUSHER_SUCCESS_SLO:.1%}.",
        query=Query(succeeded, "success"),
        decimals=3,
    )


def circuit_state() -> statetimeline.Panel:
    return state_timeline_panel(
        "Circuit breaker by instance",
        description="Open: the replica has suspended calls to Pusher after repeated failures; "
        "messages wait in the database and the relay delivers them once it closes.",
        queries=[per_instance("messages_pusher_circuit_open")],
        states=[State(0, "closed", GOOD), State(1, "open", CRITICAL)],
        width=9,
    )


def pusher_up() -> statetimeline.Panel:
    return state_timeline_panel(
        "Pusher up (probe) by instance",
        description="Result of each replica's last availability probe of Pusher. Sends keep "
        "working while Pusher is down; delivery waits.",
        queries=[per_instance("messages_pusher_up")],
        states=[State(1, "up", GOOD), State(0, "down", CRITICAL)],
        width=9,
    )


def retries() -> timeseries.Panel:
    return timeseries_panel(
        "Pusher retries/s",
        unit="reqps",
        description="Calls to Pusher carrying an event that failed before.",
        queries=[Query(q.sum_rate("messages_pusher_retries_total"), "retried calls")],
        width=6,
    )


def jobs_active() -> timeseries.Panel:
    limit = t.BACKGROUND_JOBS_ACTIVE
    return _jobs_by_instance(
        "active",
        limit,
        f"Pusher calls running per replica; the line ({limit}) is the alert threshold: calls "
        "are piling up behind a slow Pusher.",
    )


def jobs_pending() -> timeseries.Panel:
    limit = t.BACKGROUND_JOBS_PENDING
    return _jobs_by_instance(
        "pending",
        limit,
        f"Events queued per replica, waiting for a Pusher call; the line ({limit}) is the alert "
        "threshold.",
    )


def _jobs_by_instance(state: str, limit: int, description: str) -> timeseries.Panel:
    """One state of the background-jobs gauge per replica, against its alert threshold."""
    return timeseries_panel(
        f"Background jobs {state} by instance",
        unit="short",
        description=description,
        queries=[per_instance("messages_background_jobs", f'state="{state}"')],
        lines=[critical(limit)],
    )


def undelivered() -> timeseries.Panel:
    return timeseries_panel(
        "Undelivered backlog",
        unit="short",
        description="Stored messages not yet accepted by Pusher, database-wide (every replica "
        f"reports the same value, hence max). Alert above {t.UNDELIVERED_BACKLOG}.",
        queries=[Query(q.max_by((), q.series("messages_undelivered")), "undelivered")],
        lines=[critical(t.UNDELIVERED_BACKLOG)],
        width=8,
    )


def oldest_undelivered_age() -> timeseries.Panel:
    return timeseries_panel(
        "Oldest undelivered message age",
        unit="s",
        description="Age of the oldest message not yet accepted by Pusher (0 when none), "
        f"database-wide. Warning above {t.OLDEST_UNDELIVERED_WARNING_SECONDS} s, critical "
        f"above {t.OLDEST_UNDELIVERED_CRITICAL_SECONDS} s.",
        queries=[
            Query(q.max_by((), q.series("messages_oldest_undelivered_age_seconds")), "oldest")
        ],
        lines=[
            warning(t.OLDEST_UNDELIVERED_WARNING_SECONDS),
            critical(t.OLDEST_UNDELIVERED_CRITICAL_SECONDS),
        ],
        width=8,
    )


def dead_letters() -> timeseries.Panel:
    return timeseries_panel(
        "Dead-lettered messages",
        unit="short",
        description="Events given up on (permanent rejection by Pusher or attempts exhausted), "
        "per interval. Each one is a message its recipient never got live; each has a "
        "Sentry event tagged message_id. 'claims lapsed': events a replica dropped because "
        "it had not renewed their claim for a lease (it was paused, or cut off from "
        "PostgreSQL); not lost: another replica or the relay delivers them.",
        queries=[
            Query(q.sum_increase("messages_dead_lettered_total"), "dead-lettered"),
            Query(q.sum_increase("messages_delivery_claims_lapsed_total"), "claims lapsed"),
        ],
        bars=True,
        width=8,
    )
