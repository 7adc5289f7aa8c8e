"""Long-lived loops (relay, ledger, lease renewal, gauges, probe): how they run and how one
round's failure is survived."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any

from ..errors import DatabaseUnavailable

log = logging.getLogger(__name__)


async def survive(step: Awaitable[int | None], loop: str) -> int:
    """One round of a loop that must outlive a database outage or a bug in one round: log
    and carry on (the next round tries again). Returns the round's count, 0 on failure."""
    try:
        result = await step
    except DatabaseUnavailable:
        log.warning("%s: database unavailable, will retry", loop)
        return 0
    except Exception:
        log.exception("%s round failed", loop)
        return 0
    return result if isinstance(result, int) else 0


@contextlib.asynccontextmanager
async def running(*loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Long-lived loops for the lifetime of the block: cancelled and awaited at its end."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
