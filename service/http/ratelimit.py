"""Per-user send rate limit: a token bucket per user, in this replica's memory.

Hand-written because what is needed is tiny and specific: keyed buckets that answer "no, retry
in N s" at once (aiolimiter and friends make the caller wait instead), with bounded memory.
Each replica limits on its own, so N replicas allow up to N times the rate; a shared limit
would need a shared store on the hot path, which this service deliberately does not have.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class SendRateLimiter:
    def __init__(
        self,
        *,
        rate_per_second: float,
        burst: int,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_second
        self._burst = float(burst)
        self._max_users = max_users
        self._clock = clock
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def retry_after(self, user_id: int) -> float | None:
        """Take a token for this send: None if allowed, else seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.pop(user_id, None) or _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        self._buckets[user_id] = bucket  # most recently used last
        if len(self._buckets) > self._max_users:
            self._buckets.popitem(last=False)  # forget the idlest user (their bucket was full)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._rate
