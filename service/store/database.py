"""The database handle every store shares: one pool, one acquire timeout, one translation of
driver errors into the service's own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..errors import DatabaseUnavailable, ValidationFailed
from ..settings import Settings
from . import hosts, queries

#: what `Database.connection` yields: a pooled connection (generic only in the type stubs)
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
    # a connection whose protocol state an outage broke ("another operation is in progress")
    asyncpg.exceptions.InternalClientError,
)


#: what ends a connection's use with a statement perhaps still running: released without
#: waiting for its cancellation
_ABANDONED = (*_UNAVAILABLE, asyncio.CancelledError)


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
    connections, `Database.dedicated_connection`), so there is nothing to reset."""


class Database:
    """The pool behind every store object (`MessageStore`, `Outbox`, `ModeOverrides`,
    `DeadLetters`): each access waits at most `connect_timeout` for a connection and sees
    driver errors as the service's own."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        url: str,
        connect_timeout: float,
        command_timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self._url = url
        self._connect_timeout = connect_timeout
        #: a release may close the connection (after `expire_connections`): politely, which
        #: on a host that vanished would wait forever without a bound
        self._release_timeout = command_timeout
        #: connections going back to the pool in the background (see `connection`)
        self._releasing: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 1,
        command_timeout: float = 5.0,
        connect_timeout: float = 2.0,
    ) -> Database:
        """Open the pool; `DatabaseUnavailable` when the database cannot be reached."""
        with database_errors_translated():
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout,
                timeout=connect_timeout,
                reset=keep_session,
                connect=hosts.connect,  # a multi-host URL: every host at once
            )
        assert pool is not None  # create_pool returns None only when awaited as a non-coroutine
        return cls(pool, url=url, connect_timeout=connect_timeout, command_timeout=command_timeout)

    @classmethod
    async def for_service(cls, settings: Settings) -> Database:
        return await cls.open(
            settings.database_url.reveal(),
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            command_timeout=settings.db_command_timeout_seconds,
            connect_timeout=settings.db_connect_timeout_seconds,
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection within the timeout, driver errors translated for the whole
        block. asyncio.timeout rather than acquire(timeout=…), whose wait_for/shield machinery
        was 10 % of a send's samples when profiled."""
        with database_errors_translated():
            async with asyncio.timeout(self._connect_timeout):
                connection = await self._pool.acquire()
            handed_back = False
            try:
                yield connection
            except asyncpg.exceptions.InternalClientError:
                connection.terminate()  # never hand a broken connection out again
                raise
            except _ABANDONED as error:
                # A statement that timed out or was cancelled: asyncpg sends a CancelRequest
                # over a new connection, and release() waits for it. Wait for that as long as
                # opening a connection may take — a reachable server has then cancelled the
                # statement, so a 503 does not commit later — but no longer: behind a silent
                # partition the cancel cannot arrive, and waiting out its own timeout made
                # every send pay the command timeout twice. Past that, it finishes in the
                # background (terminating instead would let the statement run on, and
                # perhaps commit, even on a reachable server).
                handed_back = True
                if not isinstance(error, asyncio.CancelledError):
                    # the server (or the path to it) failed: the idle connections to it are
                    # probably dead too, and each would cost a statement timeout to find out
                    # (after a failover, every one of them points at the old primary)
                    await self._pool.expire_connections()
                await self._release_within(connection, self._connect_timeout)
                raise
            finally:
                if not handed_back:
                    await self._pool.release(connection, timeout=self._release_timeout)

    async def _release_within(self, connection: Connection, seconds: float) -> None:
        task = asyncio.create_task(self._release_quietly(connection))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        await asyncio.wait({task}, timeout=seconds)  # never cancels the release itself

    async def _release_quietly(self, connection: Connection) -> None:
        with contextlib.suppress(Exception):  # asyncpg terminates what it cannot cancel
            await self._pool.release(connection, timeout=self._release_timeout)

    async def dedicated_connection(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool, for session state (LISTEN); the caller
        closes it."""
        with database_errors_translated():
            return await hosts.connect(self._url, timeout=self._connect_timeout)

    async def execute(self, query: str, *args: object) -> None:
        """One statement on a pooled connection."""
        async with self.connection() as connection:
            await connection.execute(query, *args)

    async def ping(self) -> None:
        """A cheap round trip: what readiness means."""
        async with self.connection() as connection:
            await connection.fetchval(queries.PING)

    async def close(self) -> None:
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)
        await self._pool.close()
