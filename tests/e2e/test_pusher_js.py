"""pusher-js (the real browser/node client) against the sandbox and the service's auth endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import pytest

from ..conftest import Sandbox
from ..helpers import AppClient, auth, token

JS_DIR = Path(__file__).resolve().parents[1] / "js"
pytestmark = pytest.mark.e2e


class Subscriber:
    """A node process running tests/js/subscriber.js; its JSON lines are read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.records: list[dict[str, Any]] = []

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert line, "subscriber exited early"
        record: dict[str, Any] = json.loads(line)
        self.records.append(record)
        return record

    async def until(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            record = await self.next(timeout)
            if record["type"] == kind:
                return record

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class Subscribe(Protocol):
    """The `subscribe` fixture: a subscriber authorised as `user`, or with a forged signature."""

    def __call__(
        self, channel: str, *, user: int | None = None, forged_auth: str | None = None
    ) -> Awaitable[Subscriber]: ...


@pytest.fixture
async def subscribe(sandbox: Sandbox, client: AppClient) -> AsyncIterator[Subscribe]:
    node = shutil.which("node")
    assert node, "node is required for the pusher-js tests"
    assert (JS_DIR / "node_modules" / "pusher-js").exists(), "run `npm ci` in tests/js"
    started: list[Subscriber] = []

    async def start(
        channel: str, *, user: int | None = None, forged_auth: str | None = None
    ) -> Subscriber:
        env = {
            **os.environ,
            "WS_PORT": str(sandbox.port),
            "PUSHER_KEY": sandbox.state.config.key,
            "CHANNEL": channel,
        }
        if forged_auth is not None:
            env["FORGED_AUTH"] = forged_auth
        else:
            env["AUTH_ENDPOINT"] = str(client.make_url("/api/pusher/auth"))
            assert user is not None, "a subscriber needs a user or a forged signature"
            env["TOKEN"] = token(user)
        process = await asyncio.create_subprocess_exec(
            node,
            str(JS_DIR / "subscriber.js"),
            cwd=JS_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        subscriber = Subscriber(process)
        started.append(subscriber)
        return subscriber

    yield start
    for subscriber in started:
        await subscriber.stop()


async def _send(
    client: AppClient, sender: int, recipient: int, content: str, **extra: object
) -> dict[str, Any]:
    response = await client.post(
        "/api/messages/send",
        json={"recipientId": recipient, "content": content, **extra},
        headers=auth(sender),
    )
    assert response.status == 200
    message: dict[str, Any] = (await response.json())["message"]
    return message


async def test_participant_receives_the_event_and_outsider_is_refused(
    client: AppClient, db: asyncpg.Connection, subscribe: Subscribe
) -> None:
    first = await _send(client, 1, 2, "first")
    channel = f"private-conversation-{first['conversationId']}"

    recipient = await subscribe(channel, user=2)
    await recipient.until("connected")
    await recipient.until("subscribed")
    outsider = await subscribe(channel, user=3)
    refused = await outsider.until("subscription_error")
    assert refused["status"] == 403

    message = await _send(client, 1, 2, "héllo 👋")
    event = await recipient.until("event")
    assert event["data"] == message  # the MESSAGE shape, parsed by pusher-js
    await asyncio.sleep(0.3)
    assert not any(r["type"] == "event" for r in outsider.records)


async def test_forged_channel_signature_is_refused_by_the_server(
    client: AppClient, db: asyncpg.Connection, subscribe: Subscribe, sandbox: Sandbox
) -> None:
    first = await _send(client, 1, 2, "first")
    channel = f"private-conversation-{first['conversationId']}"
    forger = await subscribe(channel, forged_auth=f"{sandbox.state.config.key}:{'0' * 64}")
    error = await forger.until("pusher_error")
    assert error["message"].startswith("Invalid signature")
    await _send(client, 1, 2, "secret")
    await asyncio.sleep(0.3)
    assert not any(r["type"] in ("event", "subscribed") for r in forger.records)


async def test_sender_socket_gets_no_echo(
    client: AppClient, db: asyncpg.Connection, subscribe: Subscribe
) -> None:
    first = await _send(client, 1, 2, "first")
    channel = f"private-conversation-{first['conversationId']}"
    sender = await subscribe(channel, user=1)
    connected = await sender.until("connected")
    await sender.until("subscribed")
    recipient = await subscribe(channel, user=2)
    await recipient.until("subscribed")
    message = await _send(client, 1, 2, "no echo", socketId=connected["socketId"])
    assert (await recipient.until("event"))["data"]["id"] == message["id"]
    await asyncio.sleep(0.3)
    assert not any(r["type"] == "event" for r in sender.records)


async def test_dropped_connections_are_cut_refused_for_a_while_and_then_reconnect(
    client: AppClient, db: asyncpg.Connection, subscribe: Subscribe, sandbox: Sandbox
) -> None:
    """The sandbox's network-cut fault, as pusher-js sees it: the connection closes, new ones
    are refused while the cut lasts, then pusher-js reconnects and resubscribes by itself."""
    first = await _send(client, 1, 2, "first")
    channel = f"private-conversation-{first['conversationId']}"
    recipient = await subscribe(channel, user=2)
    before = await recipient.until("connected")
    await recipient.until("subscribed")
    control = await client.session.post(
        f"http://127.0.0.1:{sandbox.port}/_sandbox/connections/drop", json={"refuseSeconds": 2}
    )
    assert (await control.json()) == {"ok": True, "dropped": 1}
    missed = await _send(client, 1, 2, "while cut")
    after = await recipient.until("connected", timeout=20)
    assert after["socketId"] != before["socketId"]
    await recipient.until("subscribed")
    assert not any(
        r["type"] == "event" and r["data"]["id"] == missed["id"] for r in recipient.records
    )  # Pusher keeps no history: what was sent during the cut is for the client to fetch
    assert sandbox.state.dropped_connections == 1
    later = await _send(client, 1, 2, "after")
    assert (await recipient.until("event"))["data"]["id"] == later["id"]
