"""From the runs `__main__` measures to the rows `results` describes: medians and ranges over
runs (`report.spread`), ratios taken within each run."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

from .delivery import BurstResult
from .document_system import Outage, OutageRun
from .head_of_line import HeadOfLineRun
from .latency import SteadyDeliveryRun
from .load import Run
from .results import (
    Burst,
    DeliveryLatency,
    DocumentTable,
    HeadOfLine,
    OutageLoss,
    OutageSystem,
    Ratios,
    ResponseTimes,
    SlowPusherRow,
    Spread,
    SystemThroughput,
    ThroughputRow,
    percentile,
    spread,
)
from .throughput import Measured, SideBySide


def machine() -> str:
    """The run's header: cores, CPU model, Python, OS."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {platform.system()}"
    )


def response_times(runs: list[Run]) -> ResponseTimes:
    return {
        "p50": spread([r.percentile(50) for r in runs]),
        "p95": spread([r.percentile(95) for r in runs]),
        "p99": spread([r.percentile(99) for r in runs]),
    }


def document_table(
    runs: dict[str, list[Run]], *, delay: float, requests: int, concurrency: int
) -> DocumentTable:
    """The design document's table: send response times with Pusher taking `delay` s."""
    return {
        "delay": delay,
        "requests": requests,
        "concurrency": concurrency,
        "sync_errors": sum(r.errors for r in runs["sync"]),
        "async_errors": sum(r.errors for r in runs["async"]),
        "sync": response_times(runs["sync"]),
        "async": response_times(runs["async"]),
    }


def _system(runs: list[Measured]) -> SystemThroughput:
    def over(figure: Callable[[Measured], float]) -> Spread:
        return spread([figure(m) for m in runs])

    return {
        "rps": over(lambda m: m.wrk.throughput),
        "p50": over(lambda m: m.wrk.p50_ms),
        "p99": over(lambda m: m.wrk.p99_ms),
        "cpu_ms": over(lambda m: m.cpu_ms_per_request),
        "postgres_ms": over(lambda m: m.postgres_ms_per_request),
        "sandbox_ms": over(lambda m: m.sandbox_ms_per_request),
        "calls_per_request": over(lambda m: m.calls_per_request),
        "events_per_request": over(lambda m: m.events_per_request),
        "tail_s": over(lambda m: m.tail),
        "errors": sum(m.wrk.non2xx + m.wrk.socket_errors for m in runs),
        "trigger_failures": sum(m.trigger_failures for m in runs),
    }


def _ratios(mine: list[Measured], theirs: list[Measured]) -> Ratios:
    pairs = list(zip(mine, theirs, strict=True))
    return {
        "rps": spread([m.wrk.throughput / t.wrk.throughput for m, t in pairs]),
        "postgres_ms": spread(
            [m.postgres_ms_per_request / t.postgres_ms_per_request for m, t in pairs]
        ),
        "p99": spread([m.wrk.p99_ms / t.wrk.p99_ms for m, t in pairs]),
    }


def throughput_row(connections: int, runs: list[SideBySide]) -> ThroughputRow:
    service = [r.service for r in runs]
    bare = [r.bare for r in runs]
    document = [r.document for r in runs]
    return {
        "connections": connections,
        "service": _system(service),
        "bare": _system(bare),
        "document": _system(document),
        "service_vs_bare": _ratios(service, bare),
        "service_vs_document": _ratios(service, document),
    }


def slow_pusher_row(
    *, delay: float, loop: str, tracing: float | None, results: list[Measured], spans: list[float]
) -> SlowPusherRow:
    wrk = [r.wrk for r in results]
    return {
        "delay": delay,
        "loop": loop,
        "connections": 50,
        "tracing": tracing,
        "spans_per_request": spread(spans) if spans else None,
        "rps": spread([r.throughput for r in wrk]),
        "p50": spread([r.p50_ms for r in wrk]),
        "p99": spread([r.p99_ms for r in wrk]),
        "cpu_ms": spread([r.cpu_ms_per_request for r in results]),
    }


def delivery_latency(
    runs: list[SteadyDeliveryRun], *, rate: float, seconds: float
) -> DeliveryLatency:
    return {
        "rate": rate,
        "seconds": seconds,
        "messages": sum(r.messages for r in runs),
        "received": sum(r.received for r in runs),
        "ack_p50": spread([percentile(r.ack_ms, 50) for r in runs]),
        "ack_p99": spread([percentile(r.ack_ms, 99) for r in runs]),
        "client_p50": spread([percentile(r.client_ms, 50) for r in runs]),
        "client_p99": spread([percentile(r.client_ms, 99) for r in runs]),
    }


def burst(run: BurstResult) -> Burst:
    return {
        "messages": run.messages,
        "calls": run.calls,
        "connections": run.connections,
        "seconds": run.seconds_to_deliver,
    }


def outage_loss(outage: Outage, service: OutageRun, document: OutageRun) -> OutageLoss:
    return {
        "rate": outage.rate,
        "seconds": outage.seconds,
        "outage_from": outage.outage_from,
        "outage_for": outage.outage_for,
        "service": _outage_system(service),
        "document": _outage_system(document),
    }


def _outage_system(run: OutageRun) -> OutageSystem:
    return {
        "sent": run.sent,
        "errors": run.errors,
        "stored": run.stored,
        "delivered": run.delivered,
        "lost": run.lost,
        "seconds_after_heal": run.seconds_after_heal,
        "waited": run.waited,
        "trigger_failures": run.trigger_failures,
    }


def head_of_line(run: HeadOfLineRun) -> HeadOfLine:
    return {
        "messages": run.messages,
        "delay": run.delay,
        "calls": run.calls,
        "last_accepted_s": run.last_answered,
    }
