"""The application factory: pure wiring, no environment reads, no I/O until start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiojobs
import aiojobs.aiohttp
from aiohttp import web

from .delivery.dispatch import Dispatcher
from .delivery.mode import DeliveryModeState
from .delivery.pusher_client import PusherClient, create_session
from .http.auth import TokenVerifier
from .http.middlewares import error_middleware
from .http.routes import add_routes
from .keys import DISPATCHER, PUSHER, SETTINGS, STORE, TOKENS
from .settings import Settings
from .store.messages import MessageStore
from .store.pool import create_pool

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the service. Resources open in cleanup contexts, in dependency order, and close
    in reverse: background jobs drain before the Pusher session and the pool close."""
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[TOKENS] = TokenVerifier(settings.auth_jwt_secret)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_pusher)
    aiojobs.aiohttp.setup(
        app,
        limit=settings.delivery_max_active_jobs,
        pending_limit=settings.delivery_max_pending_jobs,
        wait_timeout=settings.shutdown_deadline_seconds,
        close_timeout=1.0,
        exception_handler=_job_failed,
    )
    app.cleanup_ctx.append(_dispatcher)
    add_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(settings)
    app[STORE] = MessageStore(pool, acquire_timeout=settings.db_connect_timeout_seconds)
    yield
    await pool.close()


async def _pusher(app: web.Application) -> AsyncIterator[None]:
    session = create_session(app[SETTINGS].pusher)
    app[PUSHER] = PusherClient(app[SETTINGS].pusher, session)
    yield
    await session.close()


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    scheduler = aiojobs.aiohttp.get_scheduler_from_app(app)
    assert scheduler is not None, "aiojobs.aiohttp.setup() runs before this context"
    app[DISPATCHER] = Dispatcher(
        client=app[PUSHER],
        scheduler=scheduler,
        mode=DeliveryModeState(app[SETTINGS].delivery_mode),
    )
    yield


def _job_failed(scheduler: aiojobs.Scheduler, context: dict[str, Any]) -> None:
    """A background job raised: make it visible instead of losing it."""
    log.error(
        "background job failed: %s",
        context.get("message"),
        exc_info=context.get("exception"),
        extra={"job": repr(context.get("job"))},
    )
