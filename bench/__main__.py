"""`python -m bench`: the design document's comparison, sync vs async with a 3 s Pusher."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform

import aiohttp

from .delivery import burst, drain, rss_under_slow_pusher
from .load import Run, send_load
from .stack import service, stack


async def document_table(requests: int, concurrency: int, delay: float) -> dict[str, Run]:
    results: dict[str, Run] = {}
    async with stack() as s, aiohttp.ClientSession() as control:
        for mode in ("sync", "async"):
            async with service(s, DELIVERY_MODE=mode) as base:
                await send_load(base, requests=20, concurrency=4)  # warm-up: pools, caches
                await s.sandbox_fault(control, kind="delay", seconds=delay)
                print(
                    f"  {mode}: {requests} sends, concurrency {concurrency}, Pusher delay {delay}s",
                    flush=True,
                )
                results[mode] = await send_load(base, requests=requests, concurrency=concurrency)
                await s.sandbox_fault(control)
    return results


def print_table(results: dict[str, Run], delay: float) -> None:
    sync, fast = results["sync"], results["async"]
    gain = 100 * (1 - fast.percentile(50) / sync.percentile(50))
    cpu = platform.processor() or platform.machine()
    print(f"\nMachine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    print(f"Pusher (sandbox) delay: {delay:.1f} s per call\n")
    print("| Metric | Before (sync) | After (async) | Improvement |")
    print("|--------|---------------|---------------|-------------|")
    for label, p in (
        ("Response time p50", 50),
        ("Response time p95", 95),
        ("Response time p99", 99),
    ):
        print(
            f"| {label} | {sync.percentile(p):.0f} ms | {fast.percentile(p):.1f} ms | "
            f"{100 * (1 - fast.percentile(p) / sync.percentile(p)):.1f}% faster |"
        )
    print(f"| Errors | {sync.errors} | {fast.errors} | |")
    print(f"\np50 improvement: {gain:.1f}%")


async def delivery_figures() -> None:
    async with stack() as s:
        result = await burst(s)
        print(
            f"burst of {result.messages}: {result.calls} Pusher calls "
            f"({result.calls_per_message:.3f} per message), {result.connections} connections, "
            f"all delivered in {result.seconds_to_deliver:.2f} s"
        )
    async with stack() as s:
        seconds, rate = await drain(s)
        print(f"backlog of 10,000 after an outage: drained in {seconds:.2f} s ({rate:.0f} msg/s)")
    async with stack() as s:
        rss = await rss_under_slow_pusher(s)
        print(
            f"30 s of sends against a 3 s Pusher: {rss['sends']:.0f} sends, p99 "
            f"{rss['send_p99_ms']:.1f} ms, {rss['errors']:.0f} errors; RSS "
            f"{rss['rss_before_mib']:.1f} MiB before, {rss['rss_after_mib']:.1f} MiB after"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", nargs="?", default="table", choices=["table", "delivery"])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--delay", type=float, default=3.0)
    args = parser.parse_args()
    if args.scenario == "delivery":
        asyncio.run(delivery_figures())
        return
    results = asyncio.run(document_table(args.requests, args.concurrency, args.delay))
    print_table(results, args.delay)


if __name__ == "__main__":
    main()
