"""`python -m bench`: every benchmark, against real processes, with a summary at the end.

Starts PostgreSQL (fsync on), the sandbox Pusher server and the service as processes (and, for
comparison, the bare handler and the design document's system, bench/document/); load
comes from wrk (throughput) or an asyncio client in this process (latency with a 3 s Pusher,
steady delivery, receipts from a headless Chromium page), never from inside the service.
Writes bench/results/latest.json, the results section of BENCHMARKS.md and
bench/results/latency.png.
"""

from __future__ import annotations

import argparse
import asyncio
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

from . import receipts, report, summaries
from .delivery import burst, drain, rss_under_slow_pusher
from .document_system import Outage, outage_loss
from .head_of_line import head_of_line
from .latency import steady_delivery
from .load import Run, send_load
from .results import (
    Burst,
    DeliveryLatency,
    DocumentTable,
    Drain,
    HeadOfLine,
    OutageLoss,
    ReceiptLatency,
    Results,
    Rss,
    SlowPusherRow,
    ThroughputRow,
    write_json,
)
from .stack import service, stack
from .throughput import VARIANTS, Measured, order, side_by_side
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
    #: sends per second for `outage_seconds`; Pusher answers 503 from `outage_from` s on for
    #: `outage_for` s
    outage_rate: float = 100.0
    outage_seconds: float = 25.0
    outage_from: float = 5.0
    outage_for: float = 15.0
    head_of_line_messages: int = 40
    head_of_line_delay: float = 3.0


QUICK = Plan(
    runs=1,
    wrk_seconds=2.0,
    connections=(1, 50),
    doc_requests=20,
    steady_seconds=3,
    receipt_seconds=3,
    backlog=1000,
    rss_seconds=5.0,
    outage_rate=50.0,
    outage_seconds=4.0,
    outage_from=1.0,
    outage_for=2.0,
    head_of_line_messages=10,
    head_of_line_delay=1.0,
)


class Runner:
    def __init__(self, plan: Plan, progress: Progress) -> None:
        self.plan = plan
        self.progress = progress
        steps = (
            2 * plan.runs
            + len(plan.connections) * plan.runs
            + len(VARIANTS) * plan.runs
            + 2 * plan.runs
            + 5
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
                    await s.sandbox_fault(control)
        return summaries.document_table(
            runs, delay=plan.delay, requests=plan.doc_requests, concurrency=plan.doc_concurrency
        )

    async def throughput(self, script: Path) -> list[ThroughputRow]:
        rows = []
        async with stack() as s:
            for connections in self.plan.connections:
                runs = []
                for n in range(self.plan.runs):
                    label = ", then ".join(order(n))
                    runs.append(
                        await self.step(
                            f"throughput: {connections} connections, run {n + 1} ({label})",
                            side_by_side(s, script, connections, self.plan.wrk_seconds, run=n),
                        )
                    )
                rows.append(summaries.throughput_row(connections, runs))
        return rows

    async def slow_pusher(self, script: Path) -> list[SlowPusherRow]:
        rows: list[SlowPusherRow] = []
        async with stack() as s:
            for variant in VARIANTS:
                delay = self.plan.delay if variant.slow_pusher else 0.0
                results: list[Measured] = []
                spans: list[float] = []
                for n in range(self.plan.runs):
                    measured, per_request = await self.step(
                        f"{variant.label(delay)}, run {n + 1}",
                        variant.measure(s, script, delay, self.plan.wrk_seconds),
                    )
                    results.append(measured)
                    spans += [] if per_request is None else [per_request]
                rows.append(
                    summaries.slow_pusher_row(
                        delay=delay,
                        loop=variant.loop,
                        tracing=variant.tracing,
                        results=results,
                        spans=spans,
                    )
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
        return summaries.delivery_latency(runs, rate=plan.steady_rate, seconds=plan.steady_seconds)

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
        drained: Drain = {"backlog": self.plan.backlog, "seconds": seconds, "rate": rate}
        return summaries.burst(b), drained, rss

    async def outage(self) -> OutageLoss:
        plan = self.plan
        outage = Outage(plan.outage_rate, plan.outage_seconds, plan.outage_from, plan.outage_for)
        async with stack() as s:
            runs = await self.step(
                f"{plan.outage_for:.0f} s Pusher outage: the service, then the document's system",
                outage_loss(s, outage),
            )
        return summaries.outage_loss(outage, *runs)

    async def head_of_line(self) -> HeadOfLine:
        messages, delay = self.plan.head_of_line_messages, self.plan.head_of_line_delay
        async with stack() as s:
            run = await self.step(
                f"head of line: {messages} sends in one conversation, a {delay:.0f} s Pusher",
                head_of_line(s, messages=messages, delay=delay),
            )
        return summaries.head_of_line(run)


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
        outage = await runner.outage()
        hol = await runner.head_of_line()
    return {
        "when": when,
        "machine": summaries.machine(),
        "runs": plan.runs,
        "document_table": document_table,
        "throughput": throughput,
        "slow_pusher": slow_pusher,
        "delivery_latency": delivery_latency,
        "receipt_latency": receipt_latency,
        "burst": burst,
        "drain": drain,
        "rss": rss,
        "outage": outage,
        "head_of_line": hol,
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
        write_json(results, ROOT / "bench" / "results" / "latest.json")
        report.plot(results["document_table"], ROOT / "bench" / "results" / "latency.png")
        report.update_benchmarks_md(section, ROOT / "BENCHMARKS.md")
        console.print("wrote bench/results/latest.json, bench/results/latency.png, BENCHMARKS.md")


if __name__ == "__main__":
    main()
