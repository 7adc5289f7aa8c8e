"""Message send — Service overview: RED for the send endpoint, its SLOs, throughput, version."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.common import BigValueTextMode

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
    latency_queries,
    stat_panel,
    timeseries_panel,
)

UID = "message-send-overview"
TITLE = "Message send — Service overview"

_ALL_SENDS = q.sum_by((), q.increase(f"{q.REQUESTS}_count", q.SEND, window=q.SLO_WINDOW))
# a status label only exists once a request got it: no 5xx yet must read 0, not "no data"
_FAILED_SENDS = q.or_zero(
    q.sum_by((), q.increase(f"{q.REQUESTS}_count", q.SEND, q.SERVER_ERROR, window=q.SLO_WINDOW))
)
_SLO_NOTE = "Computed over the dashboard's time range: pick 30 days for the SLO period."


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
        ],
    )


def send_rate() -> timeseries.Panel:
    return timeseries_panel(
        "Send requests/s by status",
        unit="reqps",
        description="POST /api/messages/send per second, by HTTP status. 503 means the "
        "database was unavailable; 4xx are the client's (validation, auth, size).",
        queries=[Query(q.sum_by(("status",), q.rate(f"{q.REQUESTS}_count", q.SEND)), "{{status}}")],
        width=8,
    )


def send_error_ratio() -> timeseries.Panel:
    failed = q.or_zero(q.sum_by((), q.rate(f"{q.REQUESTS}_count", q.SEND, q.SERVER_ERROR)))
    total = q.sum_by((), q.rate(f"{q.REQUESTS}_count", q.SEND))
    return timeseries_panel(
        "Send 5xx error ratio",
        unit="percentunit",
        description="Share of sends answered with a 5xx. The alert fires above "
        f"{t.SEND_5XX_RATIO:.0%} (line).",
        queries=[Query(q.ratio(failed, total), "5xx share")],
        lines=[critical(t.SEND_5XX_RATIO)],
        width=8,
    )


def send_latency() -> timeseries.Panel:
    return timeseries_panel(
        "Send latency (p50 / p95 / p99)",
        unit="s",
        description="Time to answer POST /api/messages/send. SLO: 99 % of sends within "
        f"{t.SEND_LATENCY_P99_SECONDS * 1000:.0f} ms, so p99 should stay under the line.",
        queries=latency_queries(q.REQUESTS, q.SEND),
        lines=[critical(t.SEND_LATENCY_P99_SECONDS)],
        width=8,
    )


def availability() -> stat.Panel:
    return stat_panel(
        "Send availability (SLO 99.9 %)",
        unit="percentunit",
        description="Share of sends not answered with a 5xx. Red under the "
        f"{t.SEND_AVAILABILITY_SLO:.1%} objective. {_SLO_NOTE}",
        queries=[Query(f"1 - ({q.ratio(_FAILED_SENDS, _ALL_SENDS)})", "availability")],
        base_color=CRITICAL,
        lines=[Line(t.SEND_AVAILABILITY_SLO, GOOD)],
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
        queries=[Query(f"1 - (({q.ratio(_FAILED_SENDS, _ALL_SENDS)}) / {budget:g})", "budget")],
        base_color=CRITICAL,
        lines=[Line(0, WARNING), Line(0.25, GOOD)],
        decimals=1,
        width=8,
    )


def latency_compliance() -> stat.Panel:
    seconds = t.SEND_LATENCY_P99_SECONDS
    return stat_panel(
        "Send latency SLO compliance (< 300 ms)",
        unit="percentunit",
        description=f"Share of sends answered within {seconds * 1000:.0f} ms. Red under the "
        f"{t.SEND_LATENCY_SLO_SHARE:.0%} objective. {_SLO_NOTE}",
        queries=[Query(q.share_within(q.REQUESTS, seconds, q.SEND), "within 300 ms")],
        base_color=CRITICAL,
        lines=[Line(t.SEND_LATENCY_SLO_SHARE, GOOD)],
        decimals=2,
        width=8,
    )


def messages_saved() -> timeseries.Panel:
    return timeseries_panel(
        "Messages saved/s",
        unit="mps",
        description="New messages stored per second (a repeated clientMessageId is not counted).",
        queries=[Query(q.sum_by((), q.rate("messages_saved_total")), "saved")],
    )


def build_version() -> stat.Panel:
    return stat_panel(
        "Build version (replicas)",
        unit="none",
        description="Versions running and how many replicas run each; two versions at "
        "once means a rollout is in progress.",
        queries=[
            Query(q.sum_by(("version",), f"messages_build_info{q.selector()}"), "{{version}}")
        ],
        base_color="blue",
        text_mode=BigValueTextMode.VALUE_AND_NAME,
        width=12,
    )
