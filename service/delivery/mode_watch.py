"""Keeps every replica's delivery mode in step with the shared override in PostgreSQL.

LISTEN/NOTIFY applies a change within milliseconds; a poll every second is the fallback for a
lost notification or a dropped listener connection, so a replica follows within 2 s either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from ..errors import DatabaseUnavailable
from ..store.mode_overrides import ModeOverrides
from ..telemetry.metrics import Metrics
from .mode import DeliveryModeState

log = logging.getLogger(__name__)


class DeliveryModeWatcher:
    def __init__(
        self,
        *,
        overrides: ModeOverrides,
        state: DeliveryModeState,
        metrics: Metrics,
        poll_seconds: float = 1.0,
    ) -> None:
        self._overrides = overrides
        self._state = state
        self._metrics = metrics
        self._poll = poll_seconds
        self._wake = asyncio.Event()

    @property
    def state(self) -> DeliveryModeState:
        return self._state

    async def refresh(self) -> None:
        """Read the override and apply it; log who changed it and when, if it changed."""
        override = await self._overrides.current()
        before = (self._state.mode, self._state.source)
        self._state.set_override(override.mode if override else None)
        self._metrics.show_delivery_mode(self._state.mode)
        if (self._state.mode, self._state.source) == before:
            return
        change = await self._overrides.latest_change()
        log.warning(
            "delivery mode changed",
            extra={
                "mode": self._state.mode,
                "source": self._state.source,
                "changed_by": change.changed_by if change else None,
                "changed_at": change.changed_at.isoformat() if change else None,
            },
        )

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        try:
            while True:
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                self._wake.clear()
                try:
                    await self.refresh()
                except DatabaseUnavailable:
                    log.warning("delivery mode watcher: database unavailable, will retry")
        finally:
            if listener is not None and not listener.is_closed():
                listener.terminate()  # at shutdown: no need for a polite goodbye

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            return await self._overrides.listen(self._wake.set)
        except DatabaseUnavailable:
            return None  # polling carries on; the next round tries again
