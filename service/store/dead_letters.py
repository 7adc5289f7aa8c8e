"""Dead-lettered messages, for on-call: list them, put them back to pending."""

from __future__ import annotations

from datetime import datetime

from . import queries
from .database import Database
from .records import DeadLetter


class DeadLetters:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def since(self, moment: datetime) -> list[DeadLetter]:
        """Messages dead-lettered since `moment` (ids and reasons, never content)."""
        async with self._database.connection() as connection:
            rows = await connection.fetch(queries.DEAD_LETTERS_SINCE, moment)
        return [DeadLetter.from_row(row) for row in rows]

    async def replay_since(self, moment: datetime) -> int:
        """Back to pending, due now: the relay delivers them (clients de-duplicate by id)."""
        async with self._database.connection() as connection:
            return int(await connection.fetchval(queries.REPLAY_DEAD_LETTERS_SINCE, moment))
