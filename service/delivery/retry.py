"""What to do after a failed Pusher call, and how long to wait before the next one."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .pusher_client import PusherError, PusherRejected


class Verdict(Enum):
    RETRY = "retry"  # transient: timeouts, connection errors, 5xx, 429
    DEAD_LETTER = "dead_letter"  # permanent: 400, 401, 413 fail the same way every time
    PAUSE = "pause"  # 403: over quota; stop calling for a while, count no attempt


def classify(error: PusherError) -> Verdict:
    if isinstance(error, PusherRejected):
        if error.status == 403:
            return Verdict.PAUSE
        if not error.retryable:
            return Verdict.DEAD_LETTER
    return Verdict.RETRY


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential
    Backoff and Jitter"): the n-th retry waits uniform(0, min(cap, base * 2**(n-1)))."""

    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    max_attempts: int = 8

    def ceiling(self, attempts: int) -> float:
        """The longest wait after `attempts` failed calls (1 → base, 2 → 2·base, …, ≤ cap)."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 · base is far past any cap
        return float(min(self.cap_seconds, self.base_seconds * 2**exponent))

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        return rand() * self.ceiling(attempts)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
