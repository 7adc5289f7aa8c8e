"""On-call operations on the database: the delivery-mode switch and dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg

from ..settings import DeliveryMode
from . import queries
from .pool import Connection

#: the LISTEN/NOTIFY channel every replica's watcher listens on
DELIVERY_MODE_CHANNEL = "delivery_mode"

AnyConnection: TypeAlias = "asyncpg.Connection | Connection"


@dataclass(frozen=True, slots=True)
class ModeOverride:
    mode: DeliveryMode
    changed_by: str
    changed_at: datetime


async def read_mode_override(connection: AnyConnection) -> ModeOverride | None:
    row = await connection.fetchrow(queries.DELIVERY_MODE_OVERRIDE)
    if row is None:
        return None
    return ModeOverride(row["mode"], row["changed_by"], row["changed_at"])


async def latest_mode_change(connection: AnyConnection) -> tuple[str, str, datetime] | None:
    """(mode, changed_by, changed_at) of the last change, for the log line that reports it."""
    row = await connection.fetchrow(queries.LATEST_DELIVERY_MODE_CHANGE)
    return None if row is None else (row["mode"], row["changed_by"], row["changed_at"])


async def write_mode_override(
    connection: AnyConnection, mode: DeliveryMode | None, changed_by: str
) -> None:
    """Set (or with None, clear) the override for every replica, record who did it, and
    notify the watchers, all in one transaction."""
    async with connection.transaction():
        if mode is None:
            await connection.execute(queries.CLEAR_DELIVERY_MODE_OVERRIDE)
        else:
            await connection.execute(queries.SET_DELIVERY_MODE_OVERRIDE, mode, changed_by)
        await connection.execute(queries.RECORD_DELIVERY_MODE_CHANGE, mode or "default", changed_by)
        await connection.execute(queries.NOTIFY_DELIVERY_MODE, mode or "default")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    conversation_id: int
    created_at: datetime
    dead_lettered_at: datetime
    attempts: int
    reason: str


async def dead_letters_since(connection: AnyConnection, since: datetime) -> list[DeadLetter]:
    rows = await connection.fetch(queries.DEAD_LETTERS_SINCE, since)
    return [
        DeadLetter(
            r["id"], r["conversation_id"], r["created_at"], r["dead_lettered_at"],
            r["delivery_attempts"], r["dead_letter_reason"] or "",
        )
        for r in rows
    ]  # fmt: skip


async def replay_dead_letters_since(connection: AnyConnection, since: datetime) -> int:
    """Back to pending, due now: the relay delivers them (clients de-duplicate by id)."""
    return int(await connection.fetchval(queries.REPLAY_DEAD_LETTERS_SINCE, since))
