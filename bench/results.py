"""The shape of a benchmark run's results: what `__main__` measures, `report` formats and
bench/results/latest.json holds (TypedDicts, so the JSON keys are the field names)."""

from __future__ import annotations

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


class ThroughputRow(TypedDict):
    """The service next to the bare handler at one wrk connection count."""

    connections: int
    service_rps: Spread
    bare_rps: Spread
    ratio: Spread
    service_p50: Spread
    service_p99: Spread
    bare_p50: Spread
    bare_p99: Spread
    service_cpu_ms: Spread
    bare_cpu_ms: Spread
    service_postgres_ms: Spread
    bare_postgres_ms: Spread
    sandbox_ms: Spread
    calls_per_request: Spread
    errors: int


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
