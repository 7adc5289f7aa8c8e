"""Numbered SQL migrations, applied once each, safe when several replicas start together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Any fixed 64-bit number works; it only has to be the same for every replica.
_MIGRATION_LOCK_ID = 7_361_204_519

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
_APPLIED_VERSIONS = "SELECT version FROM schema_migrations"
_RECORD_VERSION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migration files shipped in `service/store/migrations`, in version order."""
    folder = resources.files("service.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


async def apply_migrations(connection: asyncpg.Connection) -> list[str]:
    """Apply the pending migrations and return their names; running it twice changes nothing."""
    # A session-level advisory lock serialises concurrent starters: the second one waits,
    # then finds every migration already recorded.
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await connection.execute(_CREATE_LEDGER)
        applied = {row["version"] for row in await connection.fetch(_APPLIED_VERSIONS)}
        done = []
        for migration in available_migrations():
            if migration.version in applied:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(_RECORD_VERSION, migration.version, migration.name)
            log.info("migration applied", extra={"migration": migration.name})
            done.append(migration.name)
        return done
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)


async def migrate(database_url: str) -> list[str]:
    """Connect, apply pending migrations, disconnect."""
    connection = await asyncpg.connect(database_url)
    try:
        return await apply_migrations(connection)
    finally:
        await connection.close()
