"""POST /api/pusher/auth: private-conversation channels, for their participants only."""

from __future__ import annotations

from typing import Any

import asyncpg
import pusher
import pytest

from ..conftest import Sandbox
from ..helpers import AppClient, assert_error, auth


async def _conversation(client: AppClient) -> int:
    response = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": "hi"}, headers=auth(1)
    )
    conversation: int = (await response.json())["message"]["conversationId"]
    return conversation


def _expected(sandbox: Sandbox, channel: str, socket_id: str) -> dict[str, Any]:
    config = sandbox.state.config
    official = pusher.Pusher(app_id=config.app_id, key=config.key, secret=config.secret)
    signature: dict[str, Any] = official.authenticate(channel=channel, socket_id=socket_id)
    return signature


@pytest.mark.parametrize("user", [1, 2])
async def test_participants_get_the_official_signature(
    client: AppClient, db: asyncpg.Connection, sandbox: Sandbox, user: int
) -> None:
    channel = f"private-conversation-{await _conversation(client)}"
    response = await client.post(
        "/api/pusher/auth",
        data={"socket_id": "123.456", "channel_name": channel},
        headers=auth(user),
    )
    assert response.status == 200
    assert await response.json() == _expected(sandbox, channel, "123.456")


async def test_json_body_is_accepted_too(
    client: AppClient, db: asyncpg.Connection, sandbox: Sandbox
) -> None:
    channel = f"private-conversation-{await _conversation(client)}"
    response = await client.post(
        "/api/pusher/auth", json={"socket_id": "1.2", "channel_name": channel}, headers=auth(2)
    )
    assert await response.json() == _expected(sandbox, channel, "1.2")


@pytest.mark.parametrize(
    "channel",
    [
        "private-conversation-{id}",
        "private-conversation-999",
        "presence-conversation-{id}",
        "conversation-{id}",
        "private-encrypted-conversation-{id}",
    ],
)
async def test_everyone_else_is_refused(
    client: AppClient, db: asyncpg.Connection, channel: str
) -> None:
    conversation = await _conversation(client)
    user = 3 if "{id}" in channel and channel.startswith("private-conversation") else 1
    response = await client.post(
        "/api/pusher/auth",
        data={"socket_id": "123.456", "channel_name": channel.format(id=conversation)},
        headers=auth(user),
    )
    assert response.status == 403
    assert_error(await response.json(), "forbidden")


@pytest.mark.parametrize(
    "form",
    [
        {"socket_id": "x", "channel_name": "private-conversation-1"},
        {"channel_name": "private-conversation-1"},
        {"socket_id": "1.2"},
    ],
)
async def test_malformed_requests_get_422(
    client: AppClient, db: asyncpg.Connection, form: dict[str, str]
) -> None:
    await _conversation(client)
    response = await client.post("/api/pusher/auth", data=form, headers=auth(1))
    assert response.status == 422
    assert_error(await response.json(), "validation_failed")


async def test_auth_requires_a_token(client: AppClient, db: asyncpg.Connection) -> None:
    response = await client.post(
        "/api/pusher/auth", data={"socket_id": "1.2", "channel_name": "private-conversation-1"}
    )
    assert response.status == 401
