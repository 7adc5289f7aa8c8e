"""PostgreSQL goes away and comes back: quick 503s, readiness follows, no restart needed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.devtools.postgres import LocalPostgres
from service.settings import Settings

from ..conftest import Sandbox, create_database, new_postgres, remove_postgres
from ..helpers import assert_error, auth


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    server = new_postgres()
    yield server
    remove_postgres(server)


async def test_send_gets_quick_503_while_database_is_down(
    aiohttp_client: AiohttpClient,
    make_settings: Callable[..., Settings],
    own_postgres: LocalPostgres,
    sandbox: Sandbox,
) -> None:
    url = await create_database(own_postgres, "outage")
    client = await aiohttp_client(create_app(make_settings(database_url=url)))
    ok = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": "a"}, headers=auth(1)
    )
    assert ok.status == 200
    assert (await client.get("/readyz")).status == 200

    await asyncio.to_thread(own_postgres.kill)
    response = await asyncio.wait_for(
        client.post("/api/messages/send", json={"recipientId": 2, "content": "b"}, headers=auth(1)),
        10,
    )
    assert response.status == 503
    assert_error(await response.json(), "database_unavailable")
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"] == {"database": "failing"}
    assert (await client.get("/healthz")).status == 200  # liveness does not depend on the DB

    await asyncio.to_thread(own_postgres.start)
    for _ in range(50):  # the pool reconnects on its own
        if (await client.get("/readyz")).status == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/readyz")).status == 200
    again = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": "c"}, headers=auth(1)
    )
    assert again.status == 200
    assert len(sandbox.state.events) >= 1
