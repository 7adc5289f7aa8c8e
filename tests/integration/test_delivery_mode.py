"""The runtime rollback switch: one change in the database, every replica follows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.sandbox import Fault
from service.settings import Settings

from ..conftest import Sandbox
from ..helpers import AppClient, MakeClient, assert_error, auth, run_cli, sample, scrape

ADMIN = {"Authorization": "Bearer test-admin-token"}


async def mode_of(client: AppClient) -> dict[str, Any]:
    response = await client.get("/admin/delivery-mode", headers=ADMIN)
    assert response.status == 200
    mode: dict[str, Any] = await response.json()
    return mode


async def follows(client: AppClient, mode: str, timeout: float = 2.0) -> None:
    """The replica shows `mode` (API and metric) within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        metrics = await scrape(client)
        if (await mode_of(client))["mode"] == mode and sample(
            metrics, "messages_delivery_mode", mode=mode
        ) == 1:
            return
        assert asyncio.get_running_loop().time() < deadline, (
            f"did not switch to {mode} within {timeout}s"
        )
        await asyncio.sleep(0.05)


async def test_default_comes_from_the_environment(make_client: MakeClient) -> None:
    client = await make_client(delivery_mode="sync")
    assert await mode_of(client) == {"mode": "sync", "source": "default"}


async def test_put_switches_every_replica_and_default_goes_back(
    make_client: MakeClient,
    sandbox: Sandbox,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="service.delivery.mode_watch")
    first, second = await make_client(), await make_client()
    response = await first.put("/admin/delivery-mode", json={"mode": "sync"}, headers=ADMIN)
    assert response.status == 200
    assert await response.json() == {"mode": "sync", "source": "override"}
    await follows(second, "sync")

    # the other replica now really waits for Pusher
    sandbox.state.faults.set(Fault("hold"))
    request = asyncio.create_task(
        second.post("/api/messages/send", json={"recipientId": 2, "content": "x"}, headers=auth(1))
    )
    await asyncio.sleep(0.3)
    assert not request.done()
    sandbox.state.faults.release()
    assert (await request).status == 200

    response = await second.put("/admin/delivery-mode", json={"mode": "default"}, headers=ADMIN)
    assert await response.json() == {"mode": "async", "source": "default"}
    await follows(first, "async")
    changes = [r for r in caplog.records if r.getMessage() == "delivery mode changed"]
    assert changes and all(
        vars(r)["changed_by"].startswith("admin-api from ") and vars(r)["changed_at"]
        for r in changes
    )
    history = await db.fetch("SELECT mode, changed_by FROM delivery_mode_changes ORDER BY id")
    assert [r["mode"] for r in history] == ["sync", "default"]


async def test_polling_catches_a_change_without_notification(
    make_client: MakeClient, db: asyncpg.Connection
) -> None:
    client = await make_client()
    await db.execute(
        "INSERT INTO delivery_mode_override (mode, changed_by) VALUES ('sync', 'manual sql')"
    )
    await follows(client, "sync", timeout=2.0)  # no NOTIFY was sent: the poll found it


async def test_cli_sets_and_shows_the_mode_for_running_replicas(
    make_client: MakeClient, database_url: str
) -> None:
    client = await make_client()
    output = await run_cli(database_url, "delivery-mode", "sync")
    assert output.startswith("mode: sync (source: override, set by cli:")
    await follows(client, "sync")
    output = await run_cli(database_url, "delivery-mode", "default")
    assert output.startswith("mode: async (source: default")
    await follows(client, "async")
    assert (await run_cli(database_url, "delivery-mode")).startswith("mode: async (source: default")


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"mode": "sync"}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, {"mode": "sync"}, 401, "unauthorized"),
        (auth(1), {"mode": "sync"}, 401, "unauthorized"),  # a user token is not the admin token
        (ADMIN, {"mode": "later"}, 422, "validation_failed"),
        (ADMIN, {}, 422, "validation_failed"),
    ],
)
async def test_bad_admin_requests_change_nothing(
    client: AppClient,
    db: asyncpg.Connection,
    headers: dict[str, str],
    body: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.put("/admin/delivery-mode", json=body, headers=headers)
    assert response.status == status
    assert_error(await response.json(), code)
    assert await db.fetchval("SELECT count(*) FROM delivery_mode_override") == 0
    assert (await mode_of(client))["source"] == "default"


async def test_admin_api_is_absent_without_admin_token(
    aiohttp_client: AiohttpClient, make_settings: Callable[..., Settings], db: asyncpg.Connection
) -> None:
    client = await aiohttp_client(create_app(replace(make_settings(), admin_token=None)))
    for method in ("GET", "PUT"):
        response = await client.request(
            method, "/admin/delivery-mode", json={"mode": "sync"}, headers=ADMIN
        )
        assert response.status == 404
        assert_error(await response.json(), "not_found")
