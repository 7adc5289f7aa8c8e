"""Sentry: the real SDK posting envelopes to a local endpoint that records them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
import sentry_sdk
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from service.sandbox import Fault
from service.settings import DeliverySettings, Settings
from service.telemetry.sentry import configure_sentry

from ..conftest import Sandbox
from ..helpers import JWT_SECRET, MakeClient, auth, eventually

QUICK = DeliverySettings(relay_poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.1)
CONTENT = "the quick brown fox is a private message"


def _items(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """An envelope: a header line, then (item header line, payload line) pairs."""
    lines = body.split(b"\n")
    items = []
    index = 1
    while index + 1 < len(lines) and lines[index].strip():
        items.append((json.loads(lines[index]), lines[index + 1]))
        index += 2
    return items


@pytest.fixture
async def sentry_inbox(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    async def envelope(request: web.Request) -> web.Response:
        received.append(await request.read())  # aiohttp undoes Content-Encoding: gzip itself
        return web.json_response({"id": "0" * 32})

    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", envelope)
    server = await aiohttp_server(app)
    yield f"http://publickey@127.0.0.1:{server.port}/1", received
    sentry_sdk.get_client().close()
    sentry_sdk.init(dsn=None)


def events(received: list[bytes]) -> list[dict[str, Any]]:
    found = []
    for body in received:
        for header, payload in _items(body):
            if header.get("type") == "event":
                found.append(json.loads(payload))
    return found


async def flush() -> None:
    await asyncio.to_thread(sentry_sdk.flush, 5)  # the SDK's worker posts to our loop


async def test_one_event_per_dead_letter_none_for_success_and_nothing_secret(
    sentry_inbox: tuple[str, list[bytes]],
    make_client: MakeClient,
    make_settings: Callable[..., Settings],
    sandbox: Sandbox,
    db: asyncpg.Connection,
) -> None:
    dsn, received = sentry_inbox
    settings = make_settings()
    configure_sentry(dsn, secrets=settings.secret_values(), environment="test")
    client = await make_client(delivery=QUICK)

    ok = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": "fine"}, headers=auth(1)
    )
    assert ok.status == 200
    await eventually(lambda: len(sandbox.state.events) == 1)
    await flush()
    assert events(received) == []

    sandbox.state.faults.set(Fault("status", status=413, calls=1))
    response = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": CONTENT}, headers=auth(1)
    )
    message = (await response.json())["message"]
    await eventually(lambda: len(sandbox.state.trigger_calls) == 2)
    for _ in range(50):
        await flush()
        if events(received):
            break
    await asyncio.sleep(0.3)  # relay rounds: a retry would report again
    await flush()
    reported = events(received)
    assert len(reported) == 1
    tags = reported[0]["tags"]
    tags = dict(tags) if isinstance(tags, list) else tags
    assert tags["message_id"] == str(message["id"])
    assert tags["conversation_id"] == str(message["conversationId"])
    assert reported[0]["level"] == "error"
    everything = b"\n".join(received).decode()
    for secret in (CONTENT, JWT_SECRET, "sandbox-secret", "test-admin-token"):
        assert secret not in everything
