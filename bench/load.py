"""An asyncio load generator: N sends at a fixed concurrency, latency per request."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import jwt

from .stack import JWT_SECRET


@dataclass(frozen=True)
class Run:
    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies_ms)


def bearer(user_id: int) -> str:
    return "Bearer " + jwt.encode({"sub": str(user_id)}, JWT_SECRET, algorithm="HS256")


async def send_load(
    base_url: str,
    *,
    requests: int,
    concurrency: int,
    users: int = 50,
    seconds: float | None = None,
) -> Run:
    """`requests` sends (or as many as fit in `seconds`) spread over `users` senders,
    `concurrency` in flight at a time."""
    headers = [bearer(u) for u in range(1, users + 1)]
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds if seconds else float("inf")

    def numbers() -> Iterator[int]:
        # Stops at the deadline. A filtering generator expression here (`… if now < stop_at`)
        # spun through the rest of range(requests) on the first call after it, blocking this
        # loop for over a minute: long enough for the service to close the idle keep-alive
        # connections, so the next request failed with "Server disconnected".
        for n in range(requests):
            if time.perf_counter() >= stop_at:
                return
            yield n

    counter = numbers()
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for n in counter:
            sender = n % users
            body = {"recipientId": (sender + 1) % users + 1, "content": f"bench message {n}"}
            started = time.perf_counter()
            async with session.post(
                f"{base_url}/api/messages/send",
                json=body,
                headers={"Authorization": headers[sender]},
            ) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    continue
            latencies.append((time.perf_counter() - started) * 1000)

    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Run(latencies, errors, elapsed)
