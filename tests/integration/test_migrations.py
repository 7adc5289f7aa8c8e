"""The migrations: they produce the committed schema, apply once, and obey the numbering rule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from service.devtools.postgres import LocalPostgres
from service.devtools.schema import SCHEMA_FILE, dump_schema, out_of_date_message
from service.store.migrate import NAMING_RULE, MigrationError, available_migrations, migrate

_LEDGER = "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"


@pytest.fixture
async def fresh_database(postgres: LocalPostgres) -> AsyncIterator[str]:
    """The URL of a new, empty database on the session's server, dropped afterwards."""
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    server = await asyncpg.connect(postgres.url)
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        yield postgres.url_for(name)
        await server.execute(f'DROP DATABASE "{name}"')
    finally:
        await server.close()


def migrations_folder(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_text(f"-- {name}\n", encoding="utf-8")
    return tmp_path


async def test_migrating_a_fresh_database_produces_the_committed_schema(
    fresh_database: str,
) -> None:
    await migrate(fresh_database)
    produced = await dump_schema(fresh_database)
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert produced == committed, out_of_date_message(committed, produced)


async def test_migrating_twice_changes_nothing(fresh_database: str) -> None:
    applied = await migrate(fresh_database)
    schema = await dump_schema(fresh_database)
    connection = await asyncpg.connect(fresh_database)
    try:
        ledger = await connection.fetch(_LEDGER)
        assert await migrate(fresh_database) == []
        assert await connection.fetch(_LEDGER) == ledger
    finally:
        await connection.close()
    assert await dump_schema(fresh_database) == schema
    assert applied == [migration.name for migration in available_migrations()]


@pytest.mark.parametrize(
    ("files", "refused", "problem"),
    [
        (["0001_a.sql", "0003_c.sql"], "0003_c.sql", "should be numbered 0002"),
        (["0002_b.sql"], "0002_b.sql", "should be numbered 0001"),
        (["0000_zero.sql", "0001_a.sql"], "0000_zero.sql", "should be numbered 0001"),
        (["0001_a.sql", "0001_b.sql"], "0001_b.sql", "already used by 0001_a.sql"),
        (["0001_a.sql", "notes.sql"], "notes.sql", "not a migration file name"),
        (["1_x.sql"], "1_x.sql", "not a migration file name"),
        (["00001_x.sql"], "00001_x.sql", "not a migration file name"),
        (["0001_Add_Table.sql"], "0001_Add_Table.sql", "not a migration file name"),
        (["0001-add-table.sql"], "0001-add-table.sql", "not a migration file name"),
        (["0001_.sql"], "0001_.sql", "not a migration file name"),
    ],
)
def test_a_folder_breaking_the_numbering_rule_is_refused_naming_the_file(
    tmp_path: Path, files: list[str], refused: str, problem: str
) -> None:
    with pytest.raises(MigrationError) as raised:
        available_migrations(migrations_folder(tmp_path, *files))
    message = str(raised.value)
    assert message.startswith(f"{refused}: ")
    assert problem in message and NAMING_RULE in message
    # `python -m service` prints any RuntimeError as one `error: ...` line and exits 1
    assert isinstance(raised.value, RuntimeError)


def test_a_proper_folder_is_listed_in_number_order(tmp_path: Path) -> None:
    folder = migrations_folder(
        tmp_path, "0003_add_index.sql", "0001_create_tables.sql", "0002_v2_columns.sql"
    )
    (folder / "README.md").write_text("not a migration\n", encoding="utf-8")
    migrations = available_migrations(folder)
    assert [(m.version, m.name) for m in migrations] == [
        (1, "0001_create_tables.sql"),
        (2, "0002_v2_columns.sql"),
        (3, "0003_add_index.sql"),
    ]
    assert migrations[0].sql == "-- 0001_create_tables.sql\n"


def test_an_empty_folder_has_no_migrations(tmp_path: Path) -> None:
    assert available_migrations(tmp_path) == []


def test_the_shipped_migrations_obey_the_numbering_rule() -> None:
    shipped = resources.files("service.store") / "migrations"
    migrations = available_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert {m.name for m in migrations} == {
        entry.name for entry in shipped.iterdir() if entry.name.endswith(".sql")
    }
    assert migrations, "the shipped folder has no migrations"


async def test_the_seq_migration_numbers_existing_conversations_in_id_order(
    fresh_database: str,
) -> None:
    """Messages stored before seq existed get 1, 2, 3 … per conversation in the order they were
    stored, and the next send continues after the last of them."""
    await migrate(fresh_database, upto=4)
    connection = await asyncpg.connect(fresh_database)
    try:
        conversations = [
            await connection.fetchval(
                "INSERT INTO conversations (user_low, user_high) VALUES ($1, $2) RETURNING id",
                low,
                high,
            )
            for low, high in ((1, 2), (1, 3), (2, 3))
        ]
        # interleaved, so id order differs from any per-conversation count
        order = [0, 1, 0, 0, 1, 0]
        for n, which in enumerate(order):
            await connection.execute(
                "INSERT INTO messages (conversation_id, sender_id, recipient_id, content)"
                " VALUES ($1, 1, $2, $3)",
                conversations[which],
                2 + which,
                f"old {n}",
            )
        assert await migrate(fresh_database) == ["0005_conversation_seq.sql"]
        rows = await connection.fetch(
            "SELECT conversation_id, seq, content FROM messages ORDER BY id"
        )
        assert [(r["conversation_id"], r["seq"]) for r in rows] == [
            (conversations[0], 1),
            (conversations[1], 1),
            (conversations[0], 2),
            (conversations[0], 3),
            (conversations[1], 2),
            (conversations[0], 4),
        ]
        last = await connection.fetch("SELECT id, last_seq FROM conversations ORDER BY id")
        assert [r["last_seq"] for r in last] == [4, 2, 0]
    finally:
        await connection.close()
