from __future__ import annotations

from service.http.ratelimit import SendRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    limiter = SendRateLimiter(rate_per_second=2, burst=3, clock=clock)
    assert [limiter.retry_after(1) for _ in range(3)] == [None, None, None]
    assert limiter.retry_after(1) == 0.5  # the next token comes in half a second
    clock.now += 0.5
    assert limiter.retry_after(1) is None
    assert limiter.retry_after(2) is None  # other users have their own bucket


def test_tokens_do_not_accumulate_past_the_burst() -> None:
    clock = Clock()
    limiter = SendRateLimiter(rate_per_second=1, burst=2, clock=clock)
    limiter.retry_after(1)
    clock.now += 1000
    assert [limiter.retry_after(1) is None for _ in range(3)] == [True, True, False]


def test_memory_is_bounded() -> None:
    limiter = SendRateLimiter(rate_per_second=1, burst=1, max_users=10, clock=Clock())
    for user in range(100):
        limiter.retry_after(user)
    assert len(limiter._buckets) == 10
