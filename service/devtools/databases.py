"""Databases on a local PostgreSQL for development, tests and benchmarks."""

from __future__ import annotations

import asyncpg

from ..store.migrate import migrate
from .postgres import LocalPostgres

_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"


async def migrated_database(server: LocalPostgres, name: str, *, exist_ok: bool = False) -> str:
    """Database `name` on `server` with every migration applied, created first (unless it
    exists and `exist_ok`); returns its URL."""
    connection = await asyncpg.connect(server.url)
    try:
        if not (exist_ok and await connection.fetchval(_EXISTS, name)):
            # CREATE DATABASE takes no parameters; the name is the caller's own constant.
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = server.url_for(name)
    await migrate(url)
    return url
