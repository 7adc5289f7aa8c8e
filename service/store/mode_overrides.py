"""The delivery-mode override shared by every replica: the rollback switch's storage."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from ..settings import DeliveryMode
from . import queries
from .database import Database, database_errors_translated
from .records import ModeChange, ModeOverride


class ModeOverrides:
    """Read, set and clear the override; listen for changes made by anyone."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def current(self) -> ModeOverride | None:
        async with self._database.connection() as connection:
            row = await connection.fetchrow(queries.DELIVERY_MODE_OVERRIDE)
        return (
            None if row is None else ModeOverride(row["mode"], row["changed_by"], row["changed_at"])
        )

    async def latest_change(self) -> ModeChange | None:
        """Who changed the mode last, and when: for the log line that reports it."""
        async with self._database.connection() as connection:
            row = await connection.fetchrow(queries.LATEST_DELIVERY_MODE_CHANGE)
        return (
            None if row is None else ModeChange(row["mode"], row["changed_by"], row["changed_at"])
        )

    async def set(self, mode: DeliveryMode | None, changed_by: str) -> None:
        """Set (or with None, clear) the override for every replica, record who did it, and
        notify the watchers, all in one transaction."""
        async with self._database.connection() as connection, connection.transaction():
            if mode is None:
                await connection.execute(queries.CLEAR_DELIVERY_MODE_OVERRIDE)
            else:
                await connection.execute(queries.SET_DELIVERY_MODE_OVERRIDE, mode, changed_by)
            await connection.execute(
                queries.RECORD_DELIVERY_MODE_CHANGE, mode or "default", changed_by
            )
            await connection.execute(
                queries.NOTIFY_DELIVERY_MODE, queries.DELIVERY_MODE_CHANNEL, mode or "default"
            )

    async def listen(self, on_change: Callable[[], None]) -> asyncpg.Connection:
        """A connection of its own that calls `on_change` on every change; the caller
        terminates it. `DatabaseUnavailable` when it cannot be opened."""
        connection = await self._database.dedicated_connection()
        try:
            with database_errors_translated():
                await connection.add_listener(queries.DELIVERY_MODE_CHANNEL, lambda *_: on_change())
        except BaseException:  # unavailable, or cancelled at shutdown: do not leave it open
            connection.terminate()
            raise
        return connection
