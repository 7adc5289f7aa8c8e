"""Long-lived loops (relay, ledger, lease renewal, gauges, probe): how one round's failure is
survived (`wiring.running` runs them)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

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
