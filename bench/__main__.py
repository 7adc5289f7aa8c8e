"""`python -m bench`: every benchmark, against real processes, with a summary at the end.

Starts PostgreSQL (fsync on), the sandbox Pusher server and the service as processes; load
comes from wrk (throughput) or an asyncio client in this process (latency with a 3 s Pusher,
steady delivery, receipts from a headless Chromium page), never from inside the service.
Writes bench/results/latest.json, the results section of BENCHMARKS.md and
bench/results/latency.png.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import Progress

from . import receipts, report
from .delivery import burst, drain, rss_under_slow_pusher
from .latency import steady_delivery
from .load import Run, send_load
from .results import (
    Burst,
    DeliveryLatency,
    DocumentTable,
    Drain,
    ReceiptLatency,
    ResponseTimes,
    Results,
    Rss,
    SlowPusherRow,
    ThroughputRow,
)
from .stack import service, stack
from .throughput import Measured, service_vs_bare, traced, under_pusher_delay
from .wrk import write_script

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    runs: int = 3
    wrk_seconds: float = 5.0
    connections: tuple[int, ...] = (1, 10, 50, 100)
    doc_requests: int = 60
    doc_concurrency: int = 10
    delay: float = 3.0
    steady_rate: float = 100.0
    steady_seconds: float = 10.0
    receipt_rate: float = 50.0
    receipt_seconds: float = 10.0
    backlog: int = 10_000
    rss_seconds: float = 30.0


@dataclass(frozen=True)
class Variant:
    """One row of the slow-Pusher table: Pusher's delay, the event loop, trace sampling."""

    slow_pusher: bool = False
    loop: str = "uvloop"
    #: fraction of traces sampled and exported over OTLP; None: tracing off
    tracing: float | None = None

    def label(self, delay: float) -> str:
        traces = "tracing off" if self.tracing is None else f"{self.tracing:.0%} traced"
        return f"a {delay:.0f} s Pusher, {self.loop}, {traces}"


VARIANTS = (
    Variant(),
    Variant(slow_pusher=True),
    Variant(loop="asyncio"),
    Variant(tracing=0.1),
    Variant(tracing=1.0),
)

QUICK = Plan(
    runs=1,
    wrk_seconds=2.0,
    connections=(1, 50),
    doc_requests=20,
    steady_seconds=3,
    receipt_seconds=3,
    backlog=1000,
    rss_seconds=5.0,
)


def machine() -> str:
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


class Runner:
    def __init__(self, plan: Plan, progress: Progress) -> None:
        self.plan = plan
        self.progress = progress
        steps = (
            2 * plan.runs
            + 2 * len(plan.connections) * plan.runs
            + len(VARIANTS) * plan.runs
            + 2 * plan.runs
            + 3
        )
        self.task = progress.add_task("benchmarks", total=steps)

    async def step(self, label: str, work: Awaitable[T]) -> T:
        self.progress.update(self.task, description=label)
        result = await work
        self.progress.advance(self.task)
        return result

    async def document_table(self) -> DocumentTable:
        plan = self.plan
        runs: dict[str, list[Run]] = {"sync": [], "async": []}
        errors = {"sync": 0, "async": 0}
        async with stack() as s, aiohttp.ClientSession() as control:
            for mode in ("sync", "async"):
                async with service(s, DELIVERY_MODE=mode) as svc:
                    await send_load(svc.base, requests=20, concurrency=4)  # warm-up
                    await s.sandbox_fault(control, kind="delay", seconds=plan.delay)
                    for n in range(plan.runs):
                        run = await self.step(
                            f"document table: {mode} run {n + 1}",
                            send_load(
                                svc.base,
                                requests=plan.doc_requests,
                                concurrency=plan.doc_concurrency,
                            ),
                        )
                        runs[mode].append(run)
                        errors[mode] += run.errors
                    await s.sandbox_fault(control)
        return {
            "delay": plan.delay,
            "requests": plan.doc_requests,
            "concurrency": plan.doc_concurrency,
            "sync_errors": errors["sync"],
            "async_errors": errors["async"],
            "sync": _response_times(runs["sync"]),
            "async": _response_times(runs["async"]),
        }

    async def throughput(self, script: Path) -> list[ThroughputRow]:
        rows = []
        async with stack() as s:
            for connections in self.plan.connections:
                pairs = []
                for n in range(self.plan.runs):
                    order = "bare, then service" if n % 2 else "service, then bare"
                    pair = await self.step(
                        f"throughput: {connections} connections, run {n + 1} ({order})",
                        service_vs_bare(
                            s, script, connections, self.plan.wrk_seconds, bare_first=n % 2 == 1
                        ),
                    )
                    pairs.append(pair)
                    self.progress.advance(self.task)
                rows.append(_throughput_row(connections, pairs))
        return rows

    async def slow_pusher(self, script: Path) -> list[SlowPusherRow]:
        rows: list[SlowPusherRow] = []
        async with stack() as s:
            for variant in VARIANTS:
                delay = self.plan.delay if variant.slow_pusher else 0.0
                results: list[Measured] = []
                spans: list[float] = []
                for n in range(self.plan.runs):
                    label = f"{variant.label(delay)}, run {n + 1}"
                    if variant.tracing is None:
                        work = under_pusher_delay(
                            s, script, delay, 50, self.plan.wrk_seconds, EVENT_LOOP=variant.loop
                        )
                        results.append(await self.step(label, work))
                    else:
                        measured, per_request = await self.step(
                            label, traced(s, script, variant.tracing, 50, self.plan.wrk_seconds)
                        )
                        results.append(measured)
                        spans.append(per_request)
                wrk = [r.wrk for r in results]
                rows.append(
                    {
                        "delay": delay,
                        "loop": variant.loop,
                        "connections": 50,
                        "tracing": variant.tracing,
                        "spans_per_request": report.spread(spans) if spans else None,
                        "rps": report.spread([r.throughput for r in wrk]),
                        "p50": report.spread([r.p50_ms for r in wrk]),
                        "p99": report.spread([r.p99_ms for r in wrk]),
                        "cpu_ms": report.spread([r.cpu_ms_per_request for r in results]),
                    }
                )
        return rows

    async def delivery_latency(self) -> DeliveryLatency:
        plan, runs = self.plan, []
        for n in range(plan.runs):
            async with stack() as s:
                steady = await self.step(
                    f"delivery latency, run {n + 1}",
                    steady_delivery(s, rate=plan.steady_rate, seconds=plan.steady_seconds),
                )
                runs.append(steady)
        return {
            "rate": plan.steady_rate,
            "seconds": plan.steady_seconds,
            "messages": sum(r.messages for r in runs),
            "received": sum(r.received for r in runs),
            "ack_p50": report.spread([report.percentile(r.ack_ms, 50) for r in runs]),
            "ack_p99": report.spread([report.percentile(r.ack_ms, 99) for r in runs]),
            "client_p50": report.spread([report.percentile(r.client_ms, 50) for r in runs]),
            "client_p99": report.spread([report.percentile(r.client_ms, 99) for r in runs]),
        }

    async def receipt_latency(self) -> ReceiptLatency:
        plan, runs = self.plan, []
        for n in range(plan.runs):
            async with stack() as s:
                run = await self.step(
                    f"receipt latency (Chromium), run {n + 1}",
                    receipts.receipt_latency(
                        s, rate=plan.receipt_rate, seconds=plan.receipt_seconds
                    ),
                )
                runs.append(run)
        return receipts.summarise(runs, rate=plan.receipt_rate, seconds=plan.receipt_seconds)

    async def delivery_figures(self) -> tuple[Burst, Drain, Rss]:
        async with stack() as s:
            b = await self.step("burst of 1,000 sends", burst(s))
        async with stack() as s:
            seconds, rate = await self.step(
                f"drain a {self.plan.backlog:,} backlog", drain(s, self.plan.backlog)
            )
        async with stack() as s:
            rss = await self.step(
                f"RSS after {self.plan.rss_seconds:.0f} s against a 3 s Pusher",
                rss_under_slow_pusher(s, seconds=self.plan.rss_seconds),
            )
        return (
            {
                "messages": b.messages,
                "calls": b.calls,
                "connections": b.connections,
                "seconds": b.seconds_to_deliver,
            },
            {"backlog": self.plan.backlog, "seconds": seconds, "rate": rate},
            rss,
        )


def _response_times(runs: list[Run]) -> ResponseTimes:
    return {
        "p50": report.spread([r.percentile(50) for r in runs]),
        "p95": report.spread([r.percentile(95) for r in runs]),
        "p99": report.spread([r.percentile(99) for r in runs]),
    }


def _throughput_row(connections: int, pairs: list[tuple[Measured, Measured]]) -> ThroughputRow:
    mine, bare = [m.wrk for m, _ in pairs], [b.wrk for _, b in pairs]
    return {
        "connections": connections,
        "service_rps": report.spread([m.throughput for m in mine]),
        "bare_rps": report.spread([b.throughput for b in bare]),
        "ratio": report.spread(
            [m.throughput / b.throughput for m, b in zip(mine, bare, strict=True)]
        ),
        "service_p50": report.spread([m.p50_ms for m in mine]),
        "service_p99": report.spread([m.p99_ms for m in mine]),
        "bare_p50": report.spread([b.p50_ms for b in bare]),
        "bare_p99": report.spread([b.p99_ms for b in bare]),
        "service_cpu_ms": report.spread([m.cpu_ms_per_request for m, _ in pairs]),
        "bare_cpu_ms": report.spread([b.cpu_ms_per_request for _, b in pairs]),
        "service_postgres_ms": report.spread([m.postgres_ms_per_request for m, _ in pairs]),
        "bare_postgres_ms": report.spread([b.postgres_ms_per_request for _, b in pairs]),
        "sandbox_ms": report.spread([m.sandbox_ms_per_request for m, _ in pairs]),
        "calls_per_request": report.spread([m.calls_per_request for m, _ in pairs]),
        "errors": sum(
            m.non2xx + m.socket_errors + b.non2xx + b.socket_errors
            for m, b in zip(mine, bare, strict=True)
        ),
    }


async def run(plan: Plan, console: Console) -> Results:
    script = write_script(Path(tempfile.mkdtemp(prefix="msgsvc-wrk-")) / "send.lua")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with Progress(console=console, transient=False) as progress:
        runner = Runner(plan, progress)
        document_table = await runner.document_table()
        throughput = await runner.throughput(script)
        slow_pusher = await runner.slow_pusher(script)
        delivery_latency = await runner.delivery_latency()
        receipt_latency = await runner.receipt_latency()
        burst, drain, rss = await runner.delivery_figures()
    return {
        "when": when,
        "machine": machine(),
        "runs": plan.runs,
        "document_table": document_table,
        "throughput": throughput,
        "slow_pusher": slow_pusher,
        "delivery_latency": delivery_latency,
        "receipt_latency": receipt_latency,
        "burst": burst,
        "drain": drain,
        "rss": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run of each (a smoke test)")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave files alone")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    if args.runs:
        plan = Plan(**{**plan.__dict__, "runs": args.runs})
    console = Console()
    results = asyncio.run(run(plan, console))
    section = report.markdown(results)
    console.print(Markdown(section))
    if not args.no_write:
        report.write_json(results, ROOT / "bench" / "results" / "latest.json")
        report.plot(results["document_table"], ROOT / "bench" / "results" / "latency.png")
        report.update_benchmarks_md(section, ROOT / "BENCHMARKS.md")
        console.print("wrote bench/results/latest.json, bench/results/latency.png, BENCHMARKS.md")


if __name__ == "__main__":
    main()
