"""Delivery benchmarks: calls per message for a burst, draining a backlog, memory under a
slow Pusher."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import asyncpg

from service.store import queries

from .load import send_load
from .results import Rss
from .stack import Stack, service


@dataclass(frozen=True)
class BurstResult:
    messages: int
    calls: int
    connections: int
    seconds_to_deliver: float

    @property
    def calls_per_message(self) -> float:
        return self.calls / self.messages


async def _pending(connection: asyncpg.Connection) -> int:
    """Messages not yet delivered nor dead-lettered, by the service's own backlog query."""
    backlog = await connection.fetchrow(queries.DELIVERY_BACKLOG)
    assert backlog is not None
    return int(backlog["pending"])


async def _wait_delivered(database_url: str, timeout: float = 300.0) -> float:
    """Seconds until no message is pending delivery."""
    started = time.perf_counter()
    connection = await asyncpg.connect(database_url)
    try:
        while await _pending(connection):
            if time.perf_counter() - started > timeout:
                raise TimeoutError("backlog did not drain")
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    return time.perf_counter() - started


async def burst(stack: Stack, messages: int = 1000, concurrency: int = 100) -> BurstResult:
    """`messages` sends at once against a healthy (fast) Pusher."""
    async with aiohttp.ClientSession() as control, service(stack) as svc:
        await stack.sandbox_reset(control)
        started = time.perf_counter()
        run = await send_load(svc.base, requests=messages, concurrency=concurrency, users=200)
        await _wait_delivered(stack.database_url)
        elapsed = time.perf_counter() - started
        listing = await stack.sandbox_events(control)
    calls = [c for c in listing["calls"] if c["status"] == 200]
    assert run.errors == 0 and sum(c["events"] for c in calls) >= messages
    return BurstResult(messages, len(calls), listing["connections"], elapsed)


async def drain(stack: Stack, backlog: int = 10_000) -> tuple[float, float]:
    """Build a backlog while Pusher answers 503, then time how long it takes to drain.
    Returns (seconds to drain, messages per second)."""
    async with aiohttp.ClientSession() as control, service(stack) as svc:
        await stack.sandbox_fault(control, kind="status", status=503)
        run = await send_load(svc.base, requests=backlog, concurrency=50, users=500)
        assert run.errors == 0
        await stack.sandbox_fault(control)
        seconds = await _wait_delivered(stack.database_url)
    return seconds, backlog / seconds


async def rss_under_slow_pusher(stack: Stack, seconds: float = 30.0, delay: float = 3.0) -> Rss:
    """RSS of the service before and after `seconds` of sends at full speed while every Pusher
    call takes `delay` seconds."""
    async with aiohttp.ClientSession() as control, service(stack) as svc:
        await send_load(svc.base, requests=50, concurrency=5)
        before = svc.rss_mib()
        await stack.sandbox_fault(control, kind="delay", seconds=delay)
        run = await send_load(svc.base, requests=10**9, concurrency=50, seconds=seconds)
        after = svc.rss_mib()
        await stack.sandbox_fault(control)
    return {
        "seconds": seconds,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "sends": len(run.latencies_ms),
        "send_p99_ms": run.percentile(99),
        "errors": run.errors,
    }
