"""`seq`: 1, 2, 3 … per conversation, no gap and no repeat, whatever the concurrency; idempotent
resends and failed sends take none; history pages by it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from ..conftest import Sandbox
from ..helpers import AppClient, MakeClient, assert_error, auth, eventually


async def send(client: AppClient, sender: int, recipient: int, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/messages/send",
        json={"recipientId": recipient, "content": "hi", **body},
        headers=auth(sender),
    )
    assert response.status == 200, await response.text()
    message: dict[str, Any] = (await response.json())["message"]
    return message


async def test_seq_counts_per_conversation_whoever_sends(client: AppClient) -> None:
    first = [await send(client, *pair) for pair in ((1, 2), (2, 1), (1, 2))]
    other = [await send(client, 1, 3), await send(client, 3, 1)]
    assert [m["seq"] for m in first] == [1, 2, 3]
    assert [m["seq"] for m in other] == [1, 2]
    assert first[0]["conversationId"] != other[0]["conversationId"]


async def test_an_idempotent_resend_returns_the_original_seq_and_takes_none(
    client: AppClient,
) -> None:
    original = await send(client, 1, 2, clientMessageId="once")
    again = await send(client, 1, 2, clientMessageId="once")
    after = await send(client, 2, 1)
    assert again == original
    assert (original["seq"], after["seq"]) == (1, 2)


async def test_a_send_that_fails_takes_no_seq(
    make_client: MakeClient, db: asyncpg.Connection
) -> None:
    """The database is too slow for one send (its insert waits on a lock past the command
    timeout): that send answers 503, and the number it had taken is rolled back with it."""
    client = await make_client(db_command_timeout_seconds=0.5)
    await send(client, 1, 2)
    async with db.transaction():
        await db.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
        response = await client.post(
            "/api/messages/send", json={"recipientId": 1, "content": "x"}, headers=auth(2)
        )
        assert response.status == 503
        assert_error(await response.json(), "database_unavailable")
    after = await send(client, 2, 1)
    assert after["seq"] == 2
    assert await db.fetchval("SELECT count(*) FROM messages") == 2


async def test_replicas_sending_into_one_conversation_at_once_get_every_seq_once(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    """Two replicas, both users, 120 sends at once, a third of them resent concurrently under
    the same clientMessageId: seqs are exactly 1..N for the N distinct messages, and every
    client and every Pusher event sees the same seq for a message."""
    replicas = [await make_client(), await make_client()]
    await send(replicas[0], 1, 2)  # the conversation exists; the race is on seq, not on it

    async def one(n: int) -> dict[str, Any]:
        # the first 60 are 30 pairs: one send each to both replicas at once, same key
        group = n // 2 if n < 60 else n
        sender, recipient = (1, 2) if group % 2 else (2, 1)
        return await send(replicas[n % 2], sender, recipient, clientMessageId=f"k{group}")

    answers = await asyncio.gather(*(one(n) for n in range(120)))
    stored = await db.fetch("SELECT id, seq FROM messages ORDER BY seq")
    assert [r["seq"] for r in stored] == list(range(1, len(stored) + 1))
    by_id = {r["id"]: r["seq"] for r in stored}
    assert all(by_id[m["id"]] == m["seq"] for m in answers)
    distinct = {m["id"] for m in answers}
    assert len(distinct) == 90  # the resends stored nothing new
    assert len(stored) == 91
    await eventually(lambda: len(sandbox.state.events) >= len(stored))
    for event in sandbox.state.events:
        data = json.loads(event.data)
        assert by_id[data["id"]] == data["seq"]


async def test_history_pages_by_seq(client: AppClient) -> None:
    sent = [await send(client, *((1, 2) if n % 2 else (2, 1))) for n in range(5)]
    conversation = sent[0]["conversationId"]
    url = f"/api/conversations/{conversation}/messages"
    seqs: list[int] = []
    after: int | None = 0
    while after is not None:
        response = await client.get(url, params={"afterSeq": after, "limit": 2}, headers=auth(1))
        page = await response.json()
        seqs += [m["seq"] for m in page["messages"]]
        after = page["nextAfterSeq"]
        if after is not None:
            assert after == page["messages"][-1]["seq"]
            assert page["nextAfter"] == page["messages"][-1]["id"]
    assert seqs == [1, 2, 3, 4, 5]
    tail = await (await client.get(url, params={"afterSeq": 3}, headers=auth(2))).json()
    assert [m["id"] for m in tail["messages"]] == [m["id"] for m in sent[3:]]
    assert (tail["nextAfter"], tail["nextAfterSeq"]) == (None, None)


async def test_history_refuses_two_cursors_and_bad_seqs(client: AppClient) -> None:
    message = await send(client, 1, 2)
    url = f"/api/conversations/{message['conversationId']}/messages"
    for params in ({"afterSeq": 0, "after": 0}, {"afterSeq": -1}, {"afterSeq": "one"}):
        response = await client.get(url, params=params, headers=auth(1))
        assert response.status == 422, params
        assert_error(await response.json(), "validation_failed")
