"""The ceiling: a bare aiohttp + asyncpg handler doing only the send's insert, on the same
database, with no auth, validation, telemetry or delivery. `python -m bench.bare PORT DSN`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from service.event_loop import event_loop
from service.store import queries
from service.store.database import keep_session
from service.store.messages import conversation_of

POOL = web.AppKey("pool", asyncpg.Pool)


async def send(request: web.Request) -> web.Response:
    body = await request.json()
    sender, recipient = int(body["senderId"]), int(body["recipientId"])
    low, high = min(sender, recipient), max(sender, recipient)
    # the service's own statements, with no delivery state: no socket, claim, lease or trace
    values = (sender, recipient, body["content"], None, None, None, 0.0, None)
    async with request.app[POOL].acquire() as connection:
        row = await connection.fetchrow(
            queries.INSERT_MESSAGE_IN_EXISTING_CONVERSATION, low, high, *values
        )
        if row is None:  # the first message of a conversation (maybe racing another one)
            conversation = await conversation_of(connection, sender, recipient)
            row = await connection.fetchrow(queries.INSERT_MESSAGE, conversation, *values)
    assert row is not None  # the second insert always returns the row
    message = dict(row)
    message["created_at"] = message["created_at"].isoformat()
    return web.Response(
        text=json.dumps({"success": True, "message": message}), content_type="application/json"
    )


async def pool(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = await asyncpg.create_pool(sys.argv[2], min_size=2, max_size=10, reset=keep_session)
    yield
    await app[POOL].close()


def main() -> None:
    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_post("/api/messages/send", send)
    # the same event loop and pool settings as the service: the comparison is about the work
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        backlog=2048,
        access_log=None,
        print=None,
        loop=event_loop(os.environ),
    )


if __name__ == "__main__":
    main()
