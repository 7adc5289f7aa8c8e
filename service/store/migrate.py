"""Numbered SQL migrations, applied once each, safe when several replicas start together.

Each file in `service/store/migrations/` is named `NNNN_lower_snake_name.sql`: four digits,
numbered from 0001 with no gaps and no duplicates, then a lower-case snake_case name; they are
applied in number order. Any other `.sql` file there stops the migration with `MigrationError`
(files not ending in `.sql` are ignored). After adding one, regenerate `service/store/schema.sql`
with `python -m service.devtools.schema`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

from . import hosts
from .database import Connection

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


NAMING_RULE = (
    "migration files are named NNNN_lower_snake_name.sql: four digits numbered from 0001, "
    "no gaps, no duplicates"
)
_FILE_NAME = re.compile(r"(?P<version>[0-9]{4})_[a-z][a-z0-9]*(?:_[a-z0-9]+)*\.sql")


class MigrationError(RuntimeError):
    """The migrations folder breaks the naming rule."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations(folder: Traversable | Path | None = None) -> list[Migration]:
    """The migration files in `folder` (default: the shipped `service/store/migrations`), in
    version order; `MigrationError` when a `.sql` file there breaks the naming rule."""
    if folder is None:
        folder = resources.files("service.store") / "migrations"
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    found = [
        Migration(_version_of(entry.name), entry.name, entry.read_text(encoding="utf-8"))
        for entry in entries
    ]
    _check_numbering(found)
    return found


def _version_of(file_name: str) -> int:
    match = _FILE_NAME.fullmatch(file_name)
    if match is None:
        raise MigrationError(f"{file_name}: not a migration file name; {NAMING_RULE}")
    return int(match["version"])


def _check_numbering(migrations: list[Migration]) -> None:
    """`migrations` are sorted by name, which is version order: each number is one more than
    the one before."""
    previous: Migration | None = None
    for expected, migration in enumerate(migrations, start=1):
        if previous is not None and migration.version == previous.version:
            raise MigrationError(
                f"{migration.name}: number {migration.version:04d} is already used by "
                f"{previous.name}; {NAMING_RULE}"
            )
        if migration.version != expected:
            raise MigrationError(
                f"{migration.name}: should be numbered {expected:04d}; {NAMING_RULE}"
            )
        previous = migration


async def apply_migrations(connection: asyncpg.Connection, *, upto: int | None = None) -> list[str]:
    """Apply the pending migrations (those numbered up to `upto`, when given) and return their
    names; running it twice changes nothing."""
    # A session-level advisory lock serialises concurrent starters: the second one waits,
    # then finds every migration already recorded.
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await connection.execute(_CREATE_LEDGER)
        applied = {row["version"] for row in await connection.fetch(_APPLIED_VERSIONS)}
        done = []
        for migration in available_migrations():
            if migration.version in applied or (upto is not None and migration.version > upto):
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(_RECORD_VERSION, migration.version, migration.name)
            log.info("migration applied", extra={"migration": migration.name})
            done.append(migration.name)
        return done
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)


async def applied_versions(connection: asyncpg.Connection | Connection) -> set[int]:
    """The versions recorded as applied; none on a database never migrated."""
    try:
        return {row["version"] for row in await connection.fetch(_APPLIED_VERSIONS)}
    except asyncpg.exceptions.UndefinedTableError:
        return set()


async def migrate(database_url: str, *, upto: int | None = None) -> list[str]:
    """Connect, apply pending migrations (up to number `upto`, when given), disconnect."""
    connection = await hosts.connect(database_url)
    try:
        return await apply_migrations(connection, upto=upto)
    finally:
        await connection.close()
