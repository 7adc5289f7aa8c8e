"""Commit → the receipt a real Chromium page posts, at a steady send rate.

The recipient is the dev chat page (`/chat/?user=2`, `receipts: true`) in headless Chromium,
served by `python -m service.devtools.chat_serve` (serve plus the page) as a real process. This
process sends as user 1. Latency per message is `received_at - created_at` in the database: the
server's clock, and exactly what `messages_delivery_latency_seconds{stage="client_receipt"}`
observes; a scrape of /metrics before and after checks that the histogram agrees.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import asyncpg
from playwright.async_api import Page, async_playwright
from prometheus_client.parser import text_string_to_metric_families

from service.devtools.browser import launch_chromium

from . import report
from .load import bearer
from .results import ClientStats, ReceiptLatency
from .stack import Stack, service

SENDER, RECIPIENT = 1, 2
#: serve plus the dev chat page, so Chromium loads the page from the service's own origin
CHAT_SERVE = ("service.devtools.chat_serve",)
METRIC, STAGE = "messages_delivery_latency_seconds", "client_receipt"
READY = """() => window.chat && window.chat.client.connectionState === 'connected'
    && window.chat.client.stats.catchUps >= 1"""


@dataclass(frozen=True)
class Histogram:
    """One series of a Prometheus histogram: cumulative bucket counts by upper bound."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float

    def __sub__(self, before: Histogram) -> Histogram:
        earlier = dict(before.buckets)
        return Histogram(
            tuple((le, n - earlier.get(le, 0.0)) for le, n in self.buckets),
            self.count - before.count,
            self.sum - before.sum,
        )

    def quantile(self, q: float) -> float:
        """PromQL's histogram_quantile: linear interpolation inside the bucket holding the
        rank (from 0 in the first bucket); the +Inf bucket answers the highest finite bound."""
        if len(self.buckets) < 2 or not self.buckets[-1][1]:
            return math.nan
        rank = q * self.buckets[-1][1]
        lower, below = 0.0, 0.0
        for index, (le, cumulative) in enumerate(self.buckets):
            if cumulative >= rank:
                if math.isinf(le):
                    return self.buckets[index - 1][0]
                return lower + (le - lower) * (rank - below) / (cumulative - below)
            lower, below = le, cumulative
        return self.buckets[-2][0]


def client_receipt_histogram(exposition: str) -> Histogram:
    """The `stage="client_receipt"` series of the delivery-latency histogram in /metrics."""
    buckets: dict[float, float] = {}
    count = total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            if sample.labels.get("stage") != STAGE:
                continue
            if sample.name == f"{METRIC}_bucket":
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name == f"{METRIC}_count":
                count = sample.value
            elif sample.name == f"{METRIC}_sum":
                total = sample.value
    if not buckets:
        raise RuntimeError(f'/metrics has no {METRIC}{{stage="{STAGE}"}}')
    return Histogram(tuple(sorted(buckets.items())), count, total)


@dataclass(frozen=True)
class ReceiptRun:
    """One run: the database's latencies (ms), the histogram's increase, the page's stats."""

    messages: int
    latency_ms: list[float]
    histogram: Histogram
    #: `window.chat.client.stats` at the end
    stats: dict[str, int]

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latency_ms)

    @property
    def histogram_mean_ms(self) -> float:
        return 1000 * self.histogram.sum / self.histogram.count


async def _scrape(session: aiohttp.ClientSession, base: str) -> Histogram:
    async with session.get(f"{base}/metrics") as response:
        response.raise_for_status()
        return client_receipt_histogram(await response.text())


async def _send_steadily(
    session: aiohttp.ClientSession, base: str, rate: float, seconds: float
) -> list[int]:
    """User 1 → user 2 at `rate` per second (paced like `steady_delivery`); the ids stored."""
    headers = {"Authorization": bearer(SENDER)}

    async def send(n: int) -> int:
        body = {"recipientId": RECIPIENT, "content": f"receipt {n}"}
        async with session.post(f"{base}/api/messages/send", json=body, headers=headers) as sent:
            sent.raise_for_status()
            message_id: int = (await sent.json())["message"]["id"]
            return message_id

    pending: list[asyncio.Task[int]] = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        pending.append(asyncio.create_task(send(n)))
        await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))
    return list(await asyncio.gather(*pending))


async def _all_received(database_url: str, ids: list[int], timeout: float) -> list[float]:
    """Wait until every message has its receipt; then commit → receipt in ms, per message."""
    connection = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            received = await connection.fetchval(
                "SELECT count(*) FROM messages WHERE id = ANY($1) AND received_at IS NOT NULL",
                ids,
            )
            if received == len(ids):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{received} of {len(ids)} messages got a receipt")
            await asyncio.sleep(0.1)
        rows = await connection.fetch(
            "SELECT extract(epoch FROM received_at - created_at)::float8 AS latency "
            "FROM messages WHERE id = ANY($1)",
            ids,
        )
    finally:
        await connection.close()
    return [1000 * row["latency"] for row in rows]


async def _histogram_caught_up(
    session: aiohttp.ClientSession, base: str, before: Histogram, receipts: int
) -> Histogram:
    """The histogram's increase once it counts every receipt: a handler observes just after
    its UPDATE commits, so the database can be a moment ahead of /metrics."""
    deadline = time.monotonic() + 5
    while (increase := await _scrape(session, base) - before).count < receipts:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    if increase.count != receipts:
        raise RuntimeError(f"the histogram counted {increase.count:.0f} of {receipts} receipts")
    return increase


async def _page_stats(page: Page, receipts: int) -> dict[str, int]:
    """The page's counters, once it has counted every receipt as accepted."""
    deadline = time.monotonic() + 5
    while True:
        stats: dict[str, int] = await page.evaluate("() => window.chat.client.stats")
        if stats["receipts"] >= receipts or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.05)


def _client_stats(stats: Mapping[str, int]) -> ClientStats:
    return {
        "events": stats["events"],
        "duplicates": stats["duplicates"],
        "gaps": stats["gaps"],
        "catchUps": stats["catchUps"],
        "polls": stats["polls"],
        "retries": stats["retries"],
        "receipts": stats["receipts"],
        "delivered": stats["delivered"],
    }


async def receipt_latency(stack: Stack, *, rate: float = 50, seconds: float = 10) -> ReceiptRun:
    """One run: open the recipient's page, send steadily, wait for every receipt."""
    async with (
        service(stack, command=CHAT_SERVE) as svc,
        aiohttp.ClientSession() as session,
        async_playwright() as playwright,
    ):
        browser = await launch_chromium(playwright)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{svc.base}/chat/?user={RECIPIENT}")
            await page.wait_for_function(READY)
            await asyncio.sleep(0.5)  # the (empty) catch-up's answer
            before = await _scrape(session, svc.base)
            ids = await _send_steadily(session, svc.base, rate, seconds)
            try:
                latency_ms = await _all_received(stack.database_url, ids, timeout=30 + seconds)
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}; the page's errors: {errors}") from exc
            histogram = await _histogram_caught_up(session, svc.base, before, len(latency_ms))
            stats = await _page_stats(page, len(ids))
        finally:
            await browser.close()
    if errors:
        raise RuntimeError(f"the chat page threw: {errors}")
    run = ReceiptRun(len(ids), latency_ms, histogram, stats)
    if abs(run.mean_ms - run.histogram_mean_ms) > 1.0:
        raise RuntimeError(
            f"the histogram's mean {run.histogram_mean_ms:.3f} ms disagrees with the "
            f"database's {run.mean_ms:.3f} ms"
        )
    return run


def summarise(runs: list[ReceiptRun], *, rate: float, seconds: float) -> ReceiptLatency:
    """Several runs as `results.ReceiptLatency`: spreads over runs, page counters summed."""
    totals = {key: sum(run.stats.get(key, 0) for run in runs) for key in runs[0].stats}
    return {
        "rate": rate,
        "seconds": seconds,
        "messages": sum(r.messages for r in runs),
        "receipts": sum(len(r.latency_ms) for r in runs),
        "histogram_count": round(sum(r.histogram.count for r in runs)),
        "p50": report.spread([report.percentile(r.latency_ms, 50) for r in runs]),
        "p99": report.spread([report.percentile(r.latency_ms, 99) for r in runs]),
        "histogram_p50": report.spread([1000 * r.histogram.quantile(0.5) for r in runs]),
        "histogram_p99": report.spread([1000 * r.histogram.quantile(0.99) for r in runs]),
        "mean_ms": report.spread([r.mean_ms for r in runs]),
        "histogram_mean_ms": report.spread([r.histogram_mean_ms for r in runs]),
        "mean_gap_ms": max(abs(r.mean_ms - r.histogram_mean_ms) for r in runs),
        "client": _client_stats(totals),
    }
