"""The application factory: pure wiring, no environment reads, no I/O until start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Coroutine
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
from .telemetry.http import request_telemetry_middleware
from .telemetry.metrics import Metrics
from .telemetry.probe import probe_pusher

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, tracer_provider: trace.TracerProvider | None = None
) -> web.Application:
    """Build the service. Resources open in cleanup contexts, in dependency order, and close
    in reverse: deliveries drain before the Pusher session and the pool close.
    `tracer_provider` traces requests (server spans) and deliveries; database spans come from
    the process-wide asyncpg instrumentation (`telemetry.tracing.instrument`)."""
    metrics = Metrics()
    requests_tracer = tracer_provider.get_tracer("service.http") if tracer_provider else None
    app = web.Application(
        middlewares=[request_telemetry_middleware(metrics, requests_tracer), error_middleware],
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
    """The delivery machinery of this replica and the loops that keep it going; on the way
    out the loops stop first, then the pipeline drains and hands back what it holds."""
    settings, metrics, config = app[SETTINGS], app[METRICS], app[SETTINGS].delivery
    breaker = CircuitBreaker(
        failure_threshold=config.circuit_failure_threshold,
        cooldown_seconds=config.circuit_cooldown_seconds,
    )
    replica = _replica_id()
    ledger = DeliveredLedger(app[OUTBOX], replica)
    pipeline = _pipeline(app, breaker, ledger, replica)
    app[MODE_WATCHER] = watcher = _mode_watcher(app)
    await watcher.refresh()  # the shared override applies from the first request
    app[DISPATCHER] = Dispatcher(
        pipeline=pipeline, mode=watcher.state, lease_seconds=config.lease_seconds
    )
    app[RELAY] = relay = _relay(app, pipeline, breaker)
    breaker.on_change(lambda state: metrics.circuit_open.set(1 if state is State.OPEN else 0))
    breaker.on_change(relay.circuit_changed)
    async with _running(
        relay.run_delivery(),
        ledger.run(),
        watcher.run(),
        probe_pusher(app[PUSHER], metrics, config.pusher_probe_seconds),
        relay.run_lease_renewal(),
        relay.run_backlog_gauges(),
    ):
        log.info("delivery started", extra={"replica": replica, "mode": watcher.state.mode})
        yield
    await pipeline.close(settings.shutdown_deadline_seconds)


def _pipeline(
    app: web.Application, breaker: CircuitBreaker, ledger: DeliveredLedger, replica: str
) -> DeliveryPipeline:
    config = app[SETTINGS].delivery
    scheduler = aiojobs.aiohttp.get_scheduler_from_app(app)
    assert scheduler is not None, "aiojobs.aiohttp.setup() runs before this context"
    return DeliveryPipeline(
        client=app[PUSHER],
        outbox=app[OUTBOX],
        scheduler=scheduler,
        breaker=breaker,
        policy=RetryPolicy(
            base_seconds=config.retry_base_seconds,
            cap_seconds=config.retry_cap_seconds,
            max_attempts=config.max_attempts,
        ),
        metrics=app[METRICS],
        tracer=app[TRACER],
        replica=replica,
        capacity=config.queue_capacity,
        max_calls=config.max_concurrent_calls,
        linger_seconds=config.batch_linger_seconds,
        quota_pause_seconds=config.quota_pause_seconds,
        ledger=ledger,
    )


def _mode_watcher(app: web.Application) -> DeliveryModeWatcher:
    settings = app[SETTINGS]
    mode = DeliveryModeState(settings.delivery_mode)
    app[METRICS].show_delivery_mode(mode.mode)
    return DeliveryModeWatcher(
        database_url=settings.database_url.reveal(),
        pool=app[STORE].pool,
        state=mode,
        metrics=app[METRICS],
        poll_seconds=settings.delivery_mode_poll_seconds,
    )


def _relay(app: web.Application, pipeline: DeliveryPipeline, breaker: CircuitBreaker) -> Relay:
    config = app[SETTINGS].delivery
    return Relay(
        pipeline=pipeline,
        outbox=app[OUTBOX],
        breaker=breaker,
        metrics=app[METRICS],
        lease_seconds=config.lease_seconds,
        poll_seconds=config.relay_poll_seconds,
        backlog_refresh_seconds=config.backlog_refresh_seconds,
    )


@contextlib.asynccontextmanager
async def _running(*loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Long-lived loops for the lifetime of the block: cancelled and awaited at its end."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


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
