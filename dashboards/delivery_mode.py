"""Message send — Delivery mode: async or the sync rollback, and what the mode costs a send."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, statetimeline, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard

from . import promql as q
from . import thresholds as t
from .layout import Section, build_dashboard
from .panels import (
    GOOD,
    WARNING,
    Query,
    State,
    critical,
    latency_panel,
    per_instance,
    replica_count_panel,
    stat_panel,
    state_timeline_panel,
)

UID = "message-send-delivery-mode"
TITLE = "Message send — Delivery mode"

MODE = "messages_delivery_mode"
MODES = [State(0, "async", GOOD), State(1, "sync (rollback)", WARNING)]
_SYNC = 'mode="sync"'


def dashboard() -> Dashboard:
    return build_dashboard(
        uid=UID,
        title=TITLE,
        description="Which delivery mode is in force (sync is the rollback: the response "
        "waits for Pusher) and what it does to send latency.",
        sections=[
            Section("Mode", [current_mode(), replicas_by_mode(), mode_by_instance()]),
            Section("Cost of the mode", [send_latency(), pusher_call_latency()]),
        ],
    )


def current_mode() -> stat.Panel:
    return stat_panel(
        "Delivery mode in force",
        unit="none",
        description="sync (rollback) when any replica answers only after Pusher accepted the "
        "message; async when every replica answers at once. Switch with "
        "`python -m service delivery-mode`.",
        queries=[Query(q.max_by((), q.series(MODE, _SYNC)), "mode")],
        states=MODES,
    )


def replicas_by_mode() -> stat.Panel:
    return replica_count_panel(
        "Replicas by mode",
        metric=MODE,
        label="mode",
        unit="short",
        description="How many replicas run each mode; both non-zero means a switch is "
        "still reaching the replicas.",
    )


def mode_by_instance() -> statetimeline.Panel:
    return state_timeline_panel(
        "Delivery mode by instance",
        description="Mode of each replica over time; lines up with the latency below.",
        queries=[per_instance(MODE, _SYNC)],
        states=MODES,
    )


def send_latency() -> timeseries.Panel:
    limit = t.SEND_LATENCY_P99_SECONDS
    return latency_panel(
        "Send latency",
        q.REQUESTS,
        q.SEND,
        description="Time to answer POST /api/messages/send. In sync mode it includes the "
        f"Pusher call: the rollback's cost. SLO line: p99 under {limit * 1000:.0f} ms.",
        lines=[critical(limit)],
    )


def pusher_call_latency() -> timeseries.Panel:
    return latency_panel(
        "Pusher call latency",
        q.PUSHER_CALL_DURATION,
        description="What sync mode adds to every send: one HTTP call to Pusher.",
    )
