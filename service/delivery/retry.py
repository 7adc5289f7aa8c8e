"""How long to wait before delivering a message again."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential
    Backoff and Jitter"): the n-th retry waits uniform(0, min(cap, base * 2**(n-1))); after
    `max_attempts` failed calls a message is dead-lettered. Pusher's "over quota" pauses every
    call for `pause_seconds`, counting no attempt."""

    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    max_attempts: int = 8
    pause_seconds: float = 60.0

    def ceiling(self, attempts: int) -> float:
        """The longest wait after `attempts` failed calls (1 → base, 2 → 2·base, …, ≤ cap)."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 · base is far past any cap
        return float(min(self.cap_seconds, self.base_seconds * 2**exponent))

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        return rand() * self.ceiling(attempts)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
