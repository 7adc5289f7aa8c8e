"""`http.setup(app)`: the error middleware, the send rate limit, the sends' group commit and
the routes. Needs `telemetry.setup`, `store.setup` and `auth.setup` first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ..settings import SETTINGS
from ..store import database_of, messages_of
from ..store.group_commit import SendWriter
from ..telemetry import metrics_of, store_tracer_of
from .middlewares import error_middleware
from .ratelimit import SendRateLimiter
from .resources import SEND_LIMITER, SEND_WRITER
from .routes import add_routes


def setup(app: web.Application) -> None:
    """After telemetry.setup: the error middleware sits inside the request telemetry, so every
    request is timed with the status it was answered with."""
    settings = app[SETTINGS]
    app.middlewares.append(error_middleware)
    app[SEND_LIMITER] = SendRateLimiter(
        rate_per_second=settings.send_rate_per_second, burst=settings.send_rate_burst
    )
    app.cleanup_ctx.append(_send_writer)
    add_routes(app)


async def _send_writer(app: web.Application) -> AsyncIterator[None]:
    """Appended after delivery's contexts, so it closes first: the last sends are committed
    while delivery and the pool are still there to take them."""
    settings = app[SETTINGS]
    writer = SendWriter(
        messages_of(app),
        database_of(app),
        max_rows=settings.send_batch_max_rows,
        # a send waits for a connection and one statement, never longer (then 503)
        deadline=settings.db_connect_timeout_seconds + settings.db_command_timeout_seconds,
        tracer=store_tracer_of(app),
        on_batch=metrics_of(app).db_insert_batch_rows.observe,
    )
    app[SEND_WRITER] = writer
    task = asyncio.create_task(writer.run(), name="send-writer")
    yield
    writer.close()
    await task
