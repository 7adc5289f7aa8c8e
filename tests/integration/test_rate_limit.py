from __future__ import annotations

import asyncpg

from ..conftest import Sandbox
from ..helpers import MakeClient, assert_error, auth, sample, scrape


async def test_sends_over_the_limit_get_429_with_retry_after_and_are_counted(
    make_client: MakeClient, db: asyncpg.Connection, sandbox: Sandbox
) -> None:
    client = await make_client(send_rate_per_second=0.5, send_rate_burst=3)
    statuses = []
    for n in range(5):
        response = await client.post(
            "/api/messages/send", json={"recipientId": 2, "content": f"{n}"}, headers=auth(1)
        )
        statuses.append(response.status)
    assert statuses == [200, 200, 200, 429, 429]
    assert_error(await response.json(), "rate_limited")
    assert response.headers["Retry-After"] == "2"
    assert await db.fetchval("SELECT count(*) FROM messages") == 3  # refused sends stored nothing
    other = await client.post(
        "/api/messages/send", json={"recipientId": 1, "content": "x"}, headers=auth(2)
    )
    assert other.status == 200  # the limit is per user
    assert sample(await scrape(client), "messages_rate_limited_total") == 2
