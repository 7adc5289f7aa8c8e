"""Message send — Service overview: RED for the send endpoint, its SLOs, throughput, version."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard

from . import promql as q
from . import thresholds as t
from .layout import Section, build_dashboard
from .panels import (
    CRITICAL,
    GOOD,
    WARNING,
    Line,
    Query,
    critical,
    latency_panel,
    per_instance,
    replica_count_panel,
    slo_panel,
    stat_panel,
    timeseries_panel,
    warning,
)

UID = "message-send-overview"
TITLE = "Message send — Service overview"

# a status label only exists once a request got it: no 5xx yet must read 0, not "no data"
_FAILED_SHARE = q.range_share(q.REQUEST_COUNT, q.SEND, part=q.SERVER_ERROR, zero_if_absent=True)
_SLO_NOTE = (
    "Computed over the dashboard's time range (pick 30 days for the SLO period), for every "
    "replica of the namespace whatever the instance filter."
)


def dashboard() -> Dashboard:
    return build_dashboard(
        uid=UID,
        title=TITLE,
        description="Rate, errors and latency of POST /api/messages/send, and its SLOs.",
        sections=[
            Section(
                "Send endpoint: rate, errors, duration",
                [send_rate(), send_error_ratio(), send_latency()],
            ),
            Section(
                "SLOs over the selected time range",
                [availability(), availability_error_budget(), latency_compliance()],
            ),
            Section("Throughput and version", [messages_saved(), build_version()]),
            Section(
                "Client tokens: the identity provider's keys (with AUTH_JWKS_URL)",
                [jwks_keys_age(), jwks_fetches(), jwks_keys()],
            ),
        ],
    )


def send_rate() -> timeseries.Panel:
    return timeseries_panel(
        "Send requests/s by status",
        unit="reqps",
        description="POST /api/messages/send per second, by HTTP status. 503 means the "
        "database was unavailable; 4xx are the client's (validation, auth, size).",
        queries=[Query(q.sum_rate(q.REQUEST_COUNT, q.SEND, by=("status",)), "{{status}}")],
        width=8,
    )


def send_error_ratio() -> timeseries.Panel:
    share_5xx = q.rate_share(q.REQUEST_COUNT, q.SEND, part=q.SERVER_ERROR, zero_if_absent=True)
    return timeseries_panel(
        "Send 5xx error ratio",
        unit="percentunit",
        description="Share of sends answered with a 5xx. The alert fires above "
        f"{t.SEND_5XX_RATIO:.0%} (line).",
        queries=[Query(share_5xx, "5xx share")],
        lines=[critical(t.SEND_5XX_RATIO)],
        width=8,
    )


def send_latency() -> timeseries.Panel:
    return latency_panel(
        "Send latency",
        q.REQUESTS,
        q.SEND,
        description="Time to answer POST /api/messages/send. SLO: 99 % of sends within "
        f"{t.SEND_LATENCY_P99_SECONDS * 1000:.0f} ms, so p99 should stay under the line.",
        lines=[critical(t.SEND_LATENCY_P99_SECONDS)],
        width=8,
    )


def availability() -> stat.Panel:
    return slo_panel(
        "Send availability (SLO 99.9 %)",
        objective=t.SEND_AVAILABILITY_SLO,
        description="Share of sends not answered with a 5xx. Red under the "
        f"{t.SEND_AVAILABILITY_SLO:.1%} objective. {_SLO_NOTE}",
        query=Query(f"1 - ({_FAILED_SHARE})", "availability"),
        decimals=3,
        width=8,
    )


def availability_error_budget() -> stat.Panel:
    budget = 1 - t.SEND_AVAILABILITY_SLO
    return stat_panel(
        "Send availability error budget remaining",
        unit="percentunit",
        description=f"Share of the {budget:.1%} error budget not yet spent: "
        "1 - (5xx ratio / budget). Negative means the SLO is broken. "
        f"{_SLO_NOTE}",
        queries=[Query(f"1 - (({_FAILED_SHARE}) / {budget:g})", "budget")],
        base_color=CRITICAL,
        lines=[Line(0, WARNING), Line(0.25, GOOD)],
        decimals=1,
        width=8,
    )


def latency_compliance() -> stat.Panel:
    seconds = t.SEND_LATENCY_P99_SECONDS
    return slo_panel(
        "Send latency SLO compliance (< 300 ms)",
        objective=t.SEND_LATENCY_SLO_SHARE,
        description=f"Share of sends answered within {seconds * 1000:.0f} ms. Red under the "
        f"{t.SEND_LATENCY_SLO_SHARE:.0%} objective. {_SLO_NOTE}",
        query=Query(q.share_within(q.REQUESTS, seconds, q.SEND), "within 300 ms"),
        decimals=2,
        width=8,
    )


def messages_saved() -> timeseries.Panel:
    return timeseries_panel(
        "Messages saved/s",
        unit="mps",
        description="New messages stored per second (a repeated clientMessageId is not counted).",
        queries=[Query(q.sum_rate("messages_saved_total"), "saved")],
    )


def build_version() -> stat.Panel:
    return replica_count_panel(
        "Build version (replicas)",
        metric="messages_build_info",
        label="version",
        unit="none",
        description="Versions running and how many replicas run each; two versions at "
        "once means a rollout is in progress.",
        width=12,
    )


def jwks_keys_age() -> timeseries.Panel:
    return timeseries_panel(
        "JWKS keys age by instance",
        unit="s",
        description="Seconds since each replica last fetched the identity provider's JWKS "
        "document (refreshed at 3/4 of its max-age, at least hourly). Rising past the line "
        "while fetches fail: MessageAuthKeysStale. Tokens whose key is held keep working; "
        "tokens of a key not yet seen get 503 auth_unavailable. Empty without AUTH_JWKS_URL.",
        queries=[per_instance("messages_auth_jwks_keys_age_seconds")],
        lines=[warning(t.JWKS_KEYS_AGE_WARNING_SECONDS)],
        width=8,
    )


def jwks_fetches() -> timeseries.Panel:
    return timeseries_panel(
        "JWKS fetches by outcome",
        unit="short",
        description="Fetches of the JWKS document in each interval: background refreshes, "
        "refetches for an unknown kid (at most one per 5 s per replica), retries after a "
        "failure. Errors: the provider unreachable, answering non-200, or a document without "
        "a usable signing key.",
        queries=[
            Query(
                q.sum_increase("messages_auth_jwks_refresh_total", by=("outcome",)),
                "{{outcome}}",
            )
        ],
        bars=True,
        width=8,
    )


def jwks_keys() -> timeseries.Panel:
    return timeseries_panel(
        "JWKS signing keys in use by instance",
        unit="short",
        description="Signing keys each replica holds from the document. A rotation shows as "
        "1 -> 2 (the provider publishes the next key) -> 1 (it withdraws the old one; its "
        "tokens are refused from then on).",
        queries=[per_instance("messages_auth_jwks_keys")],
        width=8,
    )
