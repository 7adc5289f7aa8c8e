"""`python -m service` as a real process: configuration errors, migrations, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import aiohttp
import asyncpg
import pytest

from service.devtools.postgres import LocalPostgres
from service.sandbox import Fault
from service.store.migrate import available_migrations

from ..conftest import Sandbox
from ..helpers import JWT_SECRET, eventually
from .processes import ServiceProcess, service_env

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("missing", "override", "expected"),
    [
        ("AUTH_JWT_SECRET", {}, "AUTH_JWT_SECRET is required"),
        ("PUSHER_SECRET", {}, "PUSHER_SECRET is required"),
        (None, {"DATABASE_URL": "mysql://x"}, "DATABASE_URL must look like"),
        (None, {"PORT": "eighty"}, "PORT must be an integer"),
        (None, {"DELIVERY_MODE": "later"}, "DELIVERY_MODE must be one of"),
    ],
)
def test_unusable_configuration_exits_non_zero_with_one_line(
    database_url: str,
    sandbox: Sandbox,
    missing: str | None,
    override: dict[str, str],
    expected: str,
) -> None:
    env = service_env(database_url, sandbox, **override)
    env.pop(missing or "", None)
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert "test-jwt-secret" not in result.stderr and "sandbox-secret" not in result.stderr


async def migrate_three_at_once(url: str, sandbox: Sandbox) -> list[int]:
    """Three `python -m service migrate` started together, as replicas would; exit codes."""
    env = service_env(url, sandbox)
    command = (sys.executable, "-m", "service", "migrate")
    runs = await asyncio.gather(
        *(asyncio.create_subprocess_exec(*command, env=env) for _ in range(3))
    )
    return [await process.wait() for process in runs]


async def test_migrate_twice_and_concurrently_changes_nothing(
    postgres: LocalPostgres, sandbox: Sandbox
) -> None:
    from ..conftest import create_database

    url = await create_database(postgres, "migrate_twice")  # already migrated once
    assert await migrate_three_at_once(url, sandbox) == [0, 0, 0]
    connection = await asyncpg.connect(url)
    try:
        versions = await connection.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await connection.close()
    assert [r["version"] for r in versions] == [m.version for m in available_migrations()]


async def test_concurrent_first_migrations_apply_once(
    postgres: LocalPostgres, sandbox: Sandbox
) -> None:
    connection = await asyncpg.connect(postgres.url)
    await connection.execute('CREATE DATABASE "fresh_replicas"')
    await connection.close()
    url = postgres.url_for("fresh_replicas")
    assert await migrate_three_at_once(url, sandbox) == [0, 0, 0]
    connection = await asyncpg.connect(url)
    try:
        count = await connection.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(available_migrations())
    finally:
        await connection.close()


async def test_serve_answers_and_exits_zero_on_sigterm_after_delivering(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    service = await ServiceProcess(database_url, sandbox).start()
    try:
        sandbox.state.faults.set(Fault("hold"))
        async with aiohttp.ClientSession() as session:
            await service.send(session, 1, 2, "bye")
        await eventually(lambda: sandbox.state.faults.held == 1)
        service.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert service.process is not None and service.process.returncode is None  # draining
        sandbox.state.faults.release()
        assert await service.wait(timeout=15) == 0
        assert len(sandbox.state.events) == 1
    finally:
        await service.stop()
    stderr = await service.stderr()
    assert JWT_SECRET not in stderr and "sandbox-secret" not in stderr
