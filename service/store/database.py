"""The asyncpg pool and the translation of driver errors into the service's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..errors import DatabaseUnavailable, ValidationFailed
from ..settings import Settings

#: what `acquire` yields: a pooled connection (generic only in the type stubs)
Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

# Errors that mean "the database is not there right now", as opposed to a bug in a query.
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,
)


@contextmanager
def database_errors_translated() -> Iterator[None]:
    """Turn connection-level driver errors into `DatabaseUnavailable` (a 503, never a 500), and
    a value the database cannot store into a 422: validation should have caught it, but bad
    input must never be a 500."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailable() from exc
    except asyncpg.exceptions.DataError as exc:
        raise ValidationFailed("A value cannot be stored.") from exc


async def keep_session(connection: asyncpg.Connection) -> None:
    """The pool's release hook. asyncpg's default runs `RESET ALL; CLOSE ALL; UNLISTEN *; …`,
    a round trip on every release (10 % of a send's time, profiled). Pooled connections here
    never change session state: no SET, LISTEN, cursors or advisory locks (those use their own
    connections), so there is nothing to reset."""


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """Open the pool; fails with `DatabaseUnavailable` when the database cannot be reached."""
    with database_errors_translated():
        pool = await asyncpg.create_pool(
            settings.database_url.reveal(),
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            command_timeout=settings.db_command_timeout_seconds,
            timeout=settings.db_connect_timeout_seconds,
            reset=keep_session,
        )
    assert pool is not None  # create_pool returns None only when awaited as a non-coroutine
    return pool


@asynccontextmanager
async def acquire(pool: asyncpg.Pool, timeout: float) -> AsyncIterator[Connection]:
    """A connection within `timeout`, with driver errors translated for the whole block.
    asyncio.timeout rather than acquire(timeout=…), whose wait_for/shield machinery was 10 %
    of a send's samples when profiled."""
    with database_errors_translated():
        async with asyncio.timeout(timeout):
            connection = await pool.acquire()
        try:
            yield connection
        finally:
            await pool.release(connection)
