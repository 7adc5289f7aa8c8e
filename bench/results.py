"""The shape of a benchmark run's results: what `__main__` measures, `report` formats and
bench/results/latest.json holds (TypedDicts, so the JSON keys are the field names)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Literal, TypedDict

Percentile = Literal["p50", "p95", "p99"]
PERCENTILES: tuple[Percentile, ...] = ("p50", "p95", "p99")


class Spread(TypedDict):
    """Median and range of one figure over several runs."""

    median: float
    min: float
    max: float


class ResponseTimes(TypedDict):
    """Send response times in ms, one delivery mode."""

    p50: Spread
    p95: Spread
    p99: Spread


# functional syntax: "async" is a keyword
DocumentTable = TypedDict(
    "DocumentTable",
    {
        "delay": float,
        "requests": int,
        "concurrency": int,
        "sync_errors": int,
        "async_errors": int,
        "sync": ResponseTimes,
        "async": ResponseTimes,
    },
)


class SystemThroughput(TypedDict):
    """One system under wrk at one connection count, over the runs."""

    rps: Spread
    p50: Spread
    p99: Spread
    #: CPU ms per request: the server process, PostgreSQL (all its processes), the sandbox
    cpu_ms: Spread
    postgres_ms: Spread
    sandbox_ms: Spread
    #: event-carrying Pusher calls, and events Pusher accepted, per request
    calls_per_request: Spread
    events_per_request: Spread
    #: seconds after wrk ended until the server and the sandbox were idle
    tail_s: Spread
    #: non-2xx answers and socket errors, all runs
    errors: int
    #: failed Pusher triggers it logged, all runs (the document's system; 0 for the others)
    trigger_failures: int


class Ratios(TypedDict):
    """The service's figure ÷ another system's, taken within each run."""

    rps: Spread
    postgres_ms: Spread
    p99: Spread


class ThroughputRow(TypedDict):
    """The service, the bare handler and the design document's system at one wrk
    connection count, measured side by side in each run."""

    connections: int
    service: SystemThroughput
    bare: SystemThroughput
    document: SystemThroughput
    service_vs_bare: Ratios
    service_vs_document: Ratios


class SlowPusherRow(TypedDict):
    """One variant: Pusher's delay, the event loop, trace sampling (None: tracing off)."""

    delay: float
    loop: str
    connections: int
    tracing: float | None
    spans_per_request: Spread | None
    rps: Spread
    p50: Spread
    p99: Spread
    cpu_ms: Spread


class DeliveryLatency(TypedDict):
    """Commit to Pusher's acceptance and to a subscribed client, at a steady send rate."""

    rate: float
    seconds: float
    messages: int
    received: int
    ack_p50: Spread
    ack_p99: Spread
    client_p50: Spread
    client_p99: Spread


class ClientStats(TypedDict):
    """The recipient page's `window.chat.client.stats` (client/README.md), summed over runs."""

    events: int
    duplicates: int
    gaps: int
    catchUps: int
    polls: int
    retries: int
    receipts: int
    delivered: int


class ReceiptLatency(TypedDict):
    """Commit to the receipt a real Chromium page posted (the database's clock, ms), at a
    steady send rate, and what the service's own histogram makes of the same receipts."""

    rate: float
    seconds: float
    messages: int
    receipts: int
    #: increase of messages_delivery_latency_seconds_count{stage="client_receipt"}
    histogram_count: int
    p50: Spread
    p99: Spread
    #: interpolated in the histogram's buckets, as PromQL's histogram_quantile does
    histogram_p50: Spread
    histogram_p99: Spread
    mean_ms: Spread
    histogram_mean_ms: Spread
    #: the largest |database mean - histogram mean| of a run
    mean_gap_ms: float
    client: ClientStats


class Burst(TypedDict):
    messages: int
    calls: int
    connections: int
    seconds: float


class Drain(TypedDict):
    backlog: int
    seconds: float
    rate: float


class Rss(TypedDict):
    """Service memory before and after `seconds` of sends against a slow Pusher."""

    seconds: float
    rss_before_mib: float
    rss_after_mib: float
    sends: int
    send_p99_ms: float
    errors: int


class OutageSystem(TypedDict):
    """One system's sends through a Pusher outage (`bench.document_system.OutageRun`)."""

    sent: int
    errors: int
    stored: int
    delivered: int
    lost: int
    #: after Pusher healed, until the last stored message was delivered; None: some never were
    seconds_after_heal: float | None
    #: how long deliveries were waited for after the last send
    waited: float
    #: the document's system: the `Pusher trigger failed` lines it logged
    trigger_failures: int | None


class OutageLoss(TypedDict):
    """Steady sends while the sandbox answers every call 503 for `outage_for` seconds."""

    rate: float
    seconds: float
    outage_from: float
    outage_for: float
    service: OutageSystem
    document: OutageSystem


class HeadOfLine(TypedDict):
    """`messages` sends in a row into one conversation while each Pusher call takes `delay`
    seconds (`bench.head_of_line`)."""

    messages: int
    delay: float
    calls: int
    #: the longest a message waited from its send's answer to Pusher accepting its event
    last_accepted_s: float


class Results(TypedDict):
    when: str
    machine: str
    runs: int
    document_table: DocumentTable
    throughput: list[ThroughputRow]
    slow_pusher: list[SlowPusherRow]
    delivery_latency: DeliveryLatency
    receipt_latency: ReceiptLatency
    burst: Burst
    drain: Drain
    rss: Rss
    outage: OutageLoss
    head_of_line: HeadOfLine


def spread(values: list[float]) -> Spread:
    """Median and range of several runs."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
