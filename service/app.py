"""The application factory: pure wiring, no environment reads, no I/O until start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiojobs
import aiojobs.aiohttp
from aiohttp import web
from opentelemetry import trace

from .delivery.breaker import CircuitBreaker, State
from .delivery.dispatch import Dispatcher
from .delivery.ledger import DeliveredLedger
from .delivery.mode import DeliveryModeState
from .delivery.mode_watch import DeliveryModeWatcher
from .delivery.pipeline import DeliveryPipeline
from .delivery.pusher_client import PusherClient, create_session
from .delivery.relay import Relay
from .delivery.retry import RetryPolicy
from .http.auth import TokenVerifier
from .http.middlewares import error_middleware
from .http.ratelimit import SendRateLimiter
from .http.routes import add_routes
from .keys import (
    DISPATCHER,
    METRICS,
    MODE_WATCHER,
    OUTBOX,
    PUSHER,
    RELAY,
    SEND_LIMITER,
    SETTINGS,
    STORE,
    TOKENS,
    TRACER,
)
from .settings import Settings
from .store.messages import MessageStore
from .store.outbox import Outbox
from .store.pool import create_pool
from .telemetry.errors import capture_unexpected
from .telemetry.http import metrics_middleware
from .telemetry.metrics import Metrics
from .telemetry.probe import probe_pusher

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, tracer_provider: trace.TracerProvider | None = None
) -> web.Application:
    """Build the service. Resources open in cleanup contexts, in dependency order, and close
    in reverse: deliveries drain before the Pusher session and the pool close.
    `tracer_provider` traces deliveries; request and database spans come from the process-wide
    instrumentation (`telemetry.tracing.instrument`)."""
    metrics = Metrics()
    app = web.Application(
        middlewares=[metrics_middleware(metrics), error_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[TRACER] = (tracer_provider or trace.NoOpTracerProvider()).get_tracer("service.delivery")
    app[TOKENS] = TokenVerifier(settings.auth_jwt_secret)
    app[SEND_LIMITER] = SendRateLimiter(
        rate_per_second=settings.send_rate_per_second, burst=settings.send_rate_burst
    )
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_pusher)
    calls = settings.delivery.max_concurrent_calls
    aiojobs.aiohttp.setup(
        app,
        limit=calls,
        pending_limit=calls,
        wait_timeout=settings.shutdown_deadline_seconds,
        close_timeout=1.0,
        exception_handler=_job_failed,
    )
    app.cleanup_ctx.append(_delivery)
    add_routes(app, app[METRICS])
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(settings)
    timeout = settings.db_connect_timeout_seconds
    app[STORE] = MessageStore(pool, acquire_timeout=timeout)
    app[OUTBOX] = Outbox(pool, acquire_timeout=timeout)
    yield
    await pool.close()


async def _pusher(app: web.Application) -> AsyncIterator[None]:
    session = create_session(app[SETTINGS].pusher)
    app[PUSHER] = PusherClient(app[SETTINGS].pusher, session)
    yield
    await session.close()


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    config = settings.delivery
    scheduler = aiojobs.aiohttp.get_scheduler_from_app(app)
    assert scheduler is not None, "aiojobs.aiohttp.setup() runs before this context"
    breaker = CircuitBreaker(
        failure_threshold=config.circuit_failure_threshold,
        cooldown_seconds=config.circuit_cooldown_seconds,
    )
    replica = _replica_id()
    ledger = DeliveredLedger(app[OUTBOX], replica)
    pipeline = DeliveryPipeline(
        client=app[PUSHER],
        outbox=app[OUTBOX],
        scheduler=scheduler,
        breaker=breaker,
        policy=RetryPolicy(
            base_seconds=config.retry_base_seconds,
            cap_seconds=config.retry_cap_seconds,
            max_attempts=config.max_attempts,
        ),
        metrics=metrics,
        tracer=app[TRACER],
        replica=replica,
        capacity=config.queue_capacity,
        max_calls=config.max_concurrent_calls,
        quota_pause_seconds=config.quota_pause_seconds,
        ledger=ledger,
    )
    mode = DeliveryModeState(settings.delivery_mode)
    metrics.show_delivery_mode(mode.mode)
    app[MODE_WATCHER] = watcher = DeliveryModeWatcher(
        database_url=settings.database_url.reveal(),
        pool=app[STORE].pool,
        state=mode,
        metrics=metrics,
        poll_seconds=settings.delivery_mode_poll_seconds,
    )
    await watcher.refresh()  # the shared override applies from the first request
    app[DISPATCHER] = Dispatcher(pipeline=pipeline, mode=mode, lease_seconds=config.lease_seconds)
    app[RELAY] = relay = Relay(
        pipeline=pipeline,
        outbox=app[OUTBOX],
        breaker=breaker,
        metrics=metrics,
        lease_seconds=config.lease_seconds,
        poll_seconds=config.relay_poll_seconds,
        backlog_refresh_seconds=config.backlog_refresh_seconds,
    )
    breaker.on_change(lambda state: metrics.circuit_open.set(1 if state is State.OPEN else 0))
    breaker.on_change(relay.circuit_changed)

    loops = [
        asyncio.create_task(relay.run_delivery(), name="relay"),
        asyncio.create_task(ledger.run(), name="delivered-ledger"),
        asyncio.create_task(watcher.run(), name="delivery-mode-watcher"),
        asyncio.create_task(
            probe_pusher(app[PUSHER], metrics, config.pusher_probe_seconds), name="pusher-probe"
        ),
        asyncio.create_task(relay.run_lease_renewal(), name="lease-renewal"),
        asyncio.create_task(relay.run_backlog_gauges(), name="backlog-gauges"),
    ]
    log.info("delivery started", extra={"replica": pipeline.replica, "mode": mode.mode})
    yield
    for loop in loops:
        loop.cancel()
    for loop in loops:
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    await pipeline.close(settings.shutdown_deadline_seconds)


def _replica_id() -> str:
    """Who holds a claim: readable in SQL, unique even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _job_failed(scheduler: aiojobs.Scheduler, context: dict[str, Any]) -> None:
    """A background job raised: make it visible instead of losing it."""
    error = context.get("exception")
    log.error(
        "background job failed: %s",
        context.get("message"),
        exc_info=error,
        extra={"job": repr(context.get("job"))},
    )
    if isinstance(error, BaseException):
        capture_unexpected(error, where="background_job")
