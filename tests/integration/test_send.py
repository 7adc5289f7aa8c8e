"""POST /api/messages/send: stored first, answered at once, delivered in the background."""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg
import pytest
from aiohttp import ClientResponse

from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import AppClient, MakeClient, auth, eventually


async def send(client: AppClient, sender: int = 1, **body: object) -> ClientResponse:
    body.setdefault("recipientId", 2)
    body.setdefault("content", "hello")
    return await client.post("/api/messages/send", json=body, headers=auth(sender))


async def test_send_stores_message_and_triggers_pusher(
    client: AppClient, db: asyncpg.Connection, sandbox: Sandbox
) -> None:
    response = await send(
        client, content="  hello there  ", clientMessageId="c-1", socketId="123.456"
    )
    assert response.status == 200
    body = await response.json()
    assert body["success"] is True
    message = body["message"]
    assert message == {
        "id": message["id"],
        "conversationId": message["conversationId"],
        "seq": 1,
        "senderId": 1,
        "recipientId": 2,
        "content": "hello there",  # trimmed
        "clientMessageId": "c-1",
        "createdAt": message["createdAt"],
    }
    assert message["createdAt"].endswith("Z")
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", message["id"])
    assert row is not None
    assert row["content"] == "hello there" and row["sender_id"] == 1

    events = await sandbox.state.wait_for_events(1)
    assert len(events) == 1
    event = events[0]
    assert event.channel == f"private-conversation-{message['conversationId']}"
    assert event.name == "new-message"
    assert json.loads(event.data) == message
    assert event.socket_id == "123.456"


async def test_async_response_arrives_before_pusher_is_released(
    client: AppClient, sandbox: Sandbox
) -> None:
    """The design document's test: Pusher is slow, the response does not wait for it."""
    sandbox.state.faults.set(Fault("hold"))
    response = await send(client)
    assert response.status == 200  # answered while Pusher had accepted nothing
    assert sandbox.state.events == []
    await eventually(lambda: sandbox.state.faults.held == 1)  # the trigger is parked in Pusher
    assert sandbox.state.events == []
    sandbox.state.faults.release()
    events = await sandbox.state.wait_for_events(1)
    assert json.loads(events[0].data)["id"] == (await response.json())["message"]["id"]


async def test_sync_mode_waits_for_pusher(make_client: MakeClient, sandbox: Sandbox) -> None:
    """The rollback: the response is only sent after Pusher accepted the event."""
    client = await make_client(delivery_mode="sync")
    sandbox.state.faults.set(Fault("hold"))
    request = asyncio.create_task(send(client))
    await eventually(lambda: sandbox.state.faults.held == 1)
    await asyncio.sleep(0.2)
    assert not request.done()  # still waiting for Pusher
    sandbox.state.faults.release()
    response = await request
    assert response.status == 200
    assert len(sandbox.state.events) == 1  # accepted before the response was sent


def _failure_logged(caplog: pytest.LogCaptureFixture, message_id: int) -> bool:
    return any(
        r.getMessage().startswith("Pusher trigger failed")
        and getattr(r, "message_id", None) == message_id
        for r in caplog.records
    )


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize(
    "failure",
    [
        Fault("status", status=500),
        Fault("status", status=503),
        Fault("drop"),
        Fault("delay", seconds=5),
    ],
    ids=["500", "503", "dropped", "timeout"],
)
async def test_failing_pusher_never_changes_the_response(
    make_client: MakeClient,
    sandbox: Sandbox,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    failure: Fault,
) -> None:
    client = await make_client(
        delivery_mode=mode, pusher=sandbox.pusher_settings(timeout_seconds=0.3)
    )
    sandbox.state.faults.set(failure)
    caplog.set_level(logging.WARNING, logger="service.delivery")
    response = await send(client)
    assert response.status == 200
    message = (await response.json())["message"]
    assert await db.fetchval("SELECT count(*) FROM messages WHERE id = $1", message["id"]) == 1
    await eventually(lambda: _failure_logged(caplog, message["id"]))
    assert sandbox.state.events == []


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_refused_connection_to_pusher_never_changes_the_response(
    make_client: MakeClient,
    sandbox: Sandbox,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    from service.devtools.postgres import free_port

    client = await make_client(delivery_mode=mode, pusher=sandbox.pusher_settings(port=free_port()))
    caplog.set_level(logging.WARNING, logger="service.delivery")
    response = await send(client)
    assert response.status == 200
    message = (await response.json())["message"]
    await eventually(lambda: _failure_logged(caplog, message["id"]))
    assert await db.fetchval("SELECT count(*) FROM messages") == 1


async def test_repeated_client_message_id_returns_first_message_and_triggers_nothing(
    client: AppClient, db: asyncpg.Connection, sandbox: Sandbox
) -> None:
    first = await (await send(client, clientMessageId="same", content="one")).json()
    await sandbox.state.wait_for_events(1)
    again = await send(client, clientMessageId="same", content="two")
    assert again.status == 200
    assert (await again.json())["message"] == first["message"]
    assert await db.fetchval("SELECT count(*) FROM messages") == 1
    await asyncio.sleep(0.2)
    assert len(sandbox.state.events) == 1


async def test_concurrent_repeats_of_one_client_message_id_store_one_message(
    client: AppClient, db: asyncpg.Connection, sandbox: Sandbox
) -> None:
    responses = await asyncio.gather(*(send(client, clientMessageId="race") for _ in range(20)))
    ids = {(await r.json())["message"]["id"] for r in responses}
    assert [r.status for r in responses] == [200] * 20
    assert len(ids) == 1
    assert await db.fetchval("SELECT count(*) FROM messages") == 1
    await sandbox.state.wait_for_events(1)
    await asyncio.sleep(0.2)
    assert len(sandbox.state.events) == 1


async def test_same_client_message_id_from_different_senders_are_different_messages(
    client: AppClient, db: asyncpg.Connection
) -> None:
    a = await (await send(client, sender=1, recipientId=2, clientMessageId="x")).json()
    b = await (await send(client, sender=2, recipientId=1, clientMessageId="x")).json()
    assert a["message"]["id"] != b["message"]["id"]


async def test_conversation_is_the_same_whoever_sends_first(
    client: AppClient, db: asyncpg.Connection
) -> None:
    a = await (await send(client, sender=1, recipientId=2)).json()
    b = await (await send(client, sender=2, recipientId=1)).json()
    c = await (await send(client, sender=1, recipientId=3)).json()
    assert a["message"]["conversationId"] == b["message"]["conversationId"]
    assert c["message"]["conversationId"] != a["message"]["conversationId"]
    assert await db.fetchval("SELECT count(*) FROM conversations") == 2


async def test_concurrent_first_sends_create_one_conversation(
    client: AppClient, db: asyncpg.Connection
) -> None:
    responses = await asyncio.gather(
        *(send(client, sender=1 + i % 2, recipientId=2 - i % 2) for i in range(20))
    )
    conversations = {(await r.json())["message"]["conversationId"] for r in responses}
    assert len(conversations) == 1
    assert await db.fetchval("SELECT count(*) FROM messages") == 20


async def test_sender_id_in_body_equal_to_token_user_is_accepted(client: AppClient) -> None:
    response = await send(client, sender=1, senderId=1)
    assert response.status == 200
    response = await send(client, sender=1, senderId="1")
    assert response.status == 200


async def test_shutdown_completes_a_delivery_in_flight(
    client: AppClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    sandbox.state.faults.set(Fault("hold"))
    response = await send(client)
    assert response.status == 200
    message_id = (await response.json())["message"]["id"]
    await eventually(lambda: sandbox.state.faults.held == 1)
    closing = asyncio.create_task(client.close())  # runs the app's cleanup contexts
    await asyncio.sleep(0.2)
    assert not closing.done()  # shutdown waits for the job
    sandbox.state.faults.release()
    await asyncio.wait_for(closing, 5)
    assert len(sandbox.state.events) == 1
    row = await db.fetchrow(
        "SELECT delivered_at, claimed_by FROM messages WHERE id = $1", message_id
    )
    assert row is not None
    assert row["delivered_at"] is not None  # recorded before the replica let go of it
    assert row["claimed_by"] is None


async def test_shutdown_gives_up_on_a_delivery_after_the_deadline(
    make_client: MakeClient, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(shutdown_deadline_seconds=0.3)
    sandbox.state.faults.set(Fault("hold"))
    response = await send(client)
    message_id = (await response.json())["message"]["id"]
    await eventually(lambda: sandbox.state.faults.held == 1)
    await asyncio.wait_for(client.close(), 5)  # does not hang on the held call
    assert sandbox.state.events == []
    assert _failure_logged(caplog, message_id)  # the give-up is visible, not silent
    sandbox.state.faults.release()
