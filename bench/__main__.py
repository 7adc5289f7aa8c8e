"""`python -m bench`: the design document's comparison, sync vs async with a 3 s Pusher."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform

import aiohttp

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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--delay", type=float, default=3.0)
    args = parser.parse_args()
    results = asyncio.run(document_table(args.requests, args.concurrency, args.delay))
    print_table(results, args.delay)


if __name__ == "__main__":
    main()
