"""GET /api/conversations/{id}/messages: paging, oldest first, participants only."""

from __future__ import annotations

import asyncpg
import pytest

from ..helpers import AppClient, assert_error, auth


async def _conversation_with(client: AppClient, count: int) -> tuple[int, list[int]]:
    ids: list[int] = []
    for n in range(count):
        sender, recipient = (1, 2) if n % 2 == 0 else (2, 1)
        response = await client.post(
            "/api/messages/send",
            json={"recipientId": recipient, "content": f"m{n}"},
            headers=auth(sender),
        )
        message = (await response.json())["message"]
        ids.append(message["id"])
    return message["conversationId"], ids


async def test_history_pages_oldest_first(client: AppClient, db: asyncpg.Connection) -> None:
    conversation, ids = await _conversation_with(client, 5)
    url = f"/api/conversations/{conversation}/messages"
    first = await (await client.get(url, params={"limit": 2}, headers=auth(1))).json()
    assert [m["id"] for m in first["messages"]] == ids[:2]
    assert first["nextAfter"] == ids[1]
    second = await (
        await client.get(url, params={"limit": 2, "after": first["nextAfter"]}, headers=auth(2))
    ).json()
    assert [m["id"] for m in second["messages"]] == ids[2:4]
    last = await (
        await client.get(url, params={"limit": 2, "after": second["nextAfter"]}, headers=auth(1))
    ).json()
    assert [m["id"] for m in last["messages"]] == ids[4:]
    assert last["nextAfter"] is None
    everything = await (await client.get(url, headers=auth(1))).json()
    assert [m["content"] for m in everything["messages"]] == [f"m{n}" for n in range(5)]


async def test_history_is_hidden_from_non_participants_and_unknown_alike(
    client: AppClient, db: asyncpg.Connection
) -> None:
    conversation, _ = await _conversation_with(client, 1)
    outsider = await client.get(f"/api/conversations/{conversation}/messages", headers=auth(3))
    unknown = await client.get(f"/api/conversations/{conversation + 100}/messages", headers=auth(3))
    assert outsider.status == unknown.status == 404
    assert_error(await outsider.json(), "not_found")
    assert (await outsider.json())["error"] == (await unknown.json())["error"]


async def test_history_requires_a_token(client: AppClient, db: asyncpg.Connection) -> None:
    response = await client.get("/api/conversations/1/messages")
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"after": "-1"}, {"after": "1.5"}]
)
async def test_history_rejects_bad_paging(
    client: AppClient, db: asyncpg.Connection, params: dict[str, str]
) -> None:
    conversation, _ = await _conversation_with(client, 1)
    response = await client.get(
        f"/api/conversations/{conversation}/messages", params=params, headers=auth(1)
    )
    assert response.status == 422
    assert_error(await response.json(), "validation_failed")


async def test_history_with_non_numeric_or_huge_id_is_not_found(
    client: AppClient, db: asyncpg.Connection
) -> None:
    for path in ("/api/conversations/abc/messages", f"/api/conversations/{2**64}/messages"):
        response = await client.get(path, headers=auth(1))
        assert response.status == 404
        assert_error(await response.json(), "not_found")
