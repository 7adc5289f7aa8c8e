"""The periodic Pusher availability probe behind `messages_pusher_up`."""

from __future__ import annotations

import asyncio
import logging

from ..telemetry.metrics import Metrics
from .pusher_client import PusherClient, PusherError

log = logging.getLogger(__name__)


async def probe_pusher(client: PusherClient, metrics: Metrics, interval: float) -> None:
    """A cheap signed GET /apps/{id}/channels every `interval` seconds."""
    up: bool | None = None
    while True:
        try:
            await client.channels()
        except PusherError as exc:
            now_up = False
            reason = str(exc)
        else:
            now_up, reason = True, ""
        metrics.pusher_up.set(1 if now_up else 0)
        if now_up != up:
            level = logging.INFO if now_up else logging.WARNING
            log.log(level, "Pusher probe: %s", "up" if now_up else f"down ({reason})")
            up = now_up
        await asyncio.sleep(interval)
