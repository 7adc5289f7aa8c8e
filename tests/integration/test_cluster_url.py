"""A multi-host DATABASE_URL whose first host is silent (accepts nothing, refuses nothing:
a machine gone behind a partition) must not hide the hosts after it. asyncpg alone spends its
whole connect timeout on the first host; the service tries every host at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from service.store import hosts
from service.store.database import Database


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that takes connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


def _silent_host_first(database_url: str, port: int) -> str:
    parts = urlsplit(database_url)
    user, _, address = parts.netloc.rpartition("@")
    netloc = f"{user}@127.0.0.1:{port},{address}"
    return urlunsplit(parts._replace(netloc=netloc, query="target_session_attrs=read-write"))


async def test_a_silent_first_host_does_not_hide_the_next(
    database_url: str, silent_port: int
) -> None:
    url = _silent_host_first(database_url, silent_port)
    with pytest.raises(TimeoutError):  # why the service does not leave it to asyncpg
        await asyncpg.connect(url, timeout=1)

    connection = await hosts.connect(url, timeout=1)
    try:
        assert await connection.fetchval("SELECT pg_is_in_recovery()") is False
    finally:
        await connection.close()

    database = await Database.open(url, connect_timeout=1)  # the pool connects the same way
    try:
        await database.ping()
        listener = await database.dedicated_connection()
        await listener.close()
    finally:
        await database.close()


async def test_every_host_failing_reports_a_database_error(
    database_url: str, silent_port: int
) -> None:
    parts = urlsplit(database_url)
    user = parts.netloc.rpartition("@")[0]
    url = urlunsplit(
        parts._replace(
            netloc=f"{user}@127.0.0.1:{silent_port},127.0.0.1:1",
            query="target_session_attrs=read-write",
        )
    )
    with pytest.raises((TimeoutError, OSError)):
        await hosts.connect(url, timeout=0.5)
