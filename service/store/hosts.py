"""Connecting to a PostgreSQL cluster named by a multi-host DATABASE_URL
(`postgresql://user@db-a:5432,db-b:5432/messages?target_session_attrs=read-write`).

asyncpg understands such URLs, but tries the hosts one after the other inside one timeout:
when the first host vanishes without refusing (a failed machine, a partition: packets
dropped), its attempt uses the whole budget and the second host is never tried, so the
service could not follow a failover until the dead host came back. libpq's connect_timeout is
per host; here every host is tried at once, each with the full timeout, and the first that
accepts the session (read-write, as `target_session_attrs` asks) wins. Written by hand because
asyncpg has no per-host timeout or parallel attempt, and the rest of its parsing is reused:
each attempt is asyncpg's own connect with the URL and one `host`/`port` override.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from ..database_url import hosts_of


async def connect(dsn: str | None = None, **options: Any) -> asyncpg.Connection:
    """`asyncpg.connect(dsn, **options)`, with every host of a multi-host `dsn` tried at once
    (each within `timeout`); the first usable connection wins, the others are closed."""
    hosts = hosts_of(dsn) if dsn else []
    if len(hosts) <= 1:
        return await asyncpg.connect(dsn, **options)
    attempts = [
        asyncio.ensure_future(asyncpg.connect(dsn, **_one_host(host, port, options)))
        for host, port in hosts
    ]
    winner: asyncpg.Connection | None = None
    errors: list[Exception] = []
    try:
        for finished in asyncio.as_completed(attempts):
            try:
                winner = await finished
                return winner
            except Exception as error:  # down, a standby, or refused us: the next host
                errors.append(error)
        raise _most_telling(errors)
    finally:
        for attempt in attempts:
            attempt.cancel()  # the slower hosts' attempts; nothing for finished ones
        for result in await asyncio.gather(*attempts, return_exceptions=True):
            if isinstance(result, asyncpg.Connection) and result is not winner:
                result.terminate()


def _most_telling(errors: list[Exception]) -> Exception:
    """Of every host's failure, the one that says most: a server's answer (a standby, a wrong
    password) over a timeout or a refused connection."""
    for error in errors:
        if not isinstance(error, OSError | TimeoutError):
            return error
    return errors[0]


def _one_host(host: str, port: int | None, options: dict[str, Any]) -> dict[str, Any]:
    """`options` with the URL's host list overridden by one host (and its port, if given)."""
    return {**options, "host": host, **({"port": port} if port else {})}
