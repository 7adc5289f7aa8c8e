"""`delivery.setup(app)`: the Pusher session, the background jobs, and this replica's delivery
machinery with the loops that keep it going. Needs `telemetry.setup` and `store.setup` first.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiojobs
import aiojobs.aiohttp
from aiohttp import web

from ..settings import SETTINGS
from ..store import database_of, mode_overrides_of
from ..store.outbox import Outbox
from ..store.records import Claim
from ..telemetry import delivery_tracer_of, metrics_of
from ..telemetry.sentry import capture_unexpected
from ..wiring import getter, running
from .breaker import CircuitBreaker, State
from .dispatch import Dispatcher
from .failures import OUTCOMES
from .ledger import DeliveredLedger
from .mode import DeliveryModeState
from .mode_watch import DeliveryModeWatcher
from .outcomes import DeliveryOutcomes
from .pipeline import DeliveryPipeline
from .probe import probe_pusher
from .pusher_client import PusherClient, create_session
from .queue import DeliveryQueue
from .receipts import ReceiptNotices
from .relay import Relay, renew_claims, show_backlog
from .retry import RetryPolicy

log = logging.getLogger(__name__)

PUSHER = web.AppKey("pusher", PusherClient)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
#: this replica's circuit breaker for Pusher calls, shared by delivery and receipt notices
BREAKER = web.AppKey("pusher_breaker", CircuitBreaker)
MODE_WATCHER = web.AppKey("mode_watcher", DeliveryModeWatcher)
RECEIPT_NOTICES = web.AppKey("receipt_notices", ReceiptNotices)

#: receipt notices in flight / waiting, at most; past that they are dropped (best effort)
_NOTICE_CALLS, _NOTICE_BACKLOG = 4, 256


def setup(app: web.Application) -> None:
    """Resources open in this order and close in reverse: deliveries drain before the jobs'
    scheduler, the Pusher session and (store.setup's) pool close."""
    calls = app[SETTINGS].delivery.max_concurrent_calls
    metrics_of(app).expect_pusher_outcomes(OUTCOMES)
    app.cleanup_ctx.append(_pusher)
    aiojobs.aiohttp.setup(
        app,
        limit=calls,  # the pipeline's cap on Pusher calls in flight
        pending_limit=calls,
        wait_timeout=app[SETTINGS].shutdown_deadline_seconds,
        close_timeout=1.0,
        exception_handler=_job_failed,
    )
    app.cleanup_ctx.append(_delivery)
    app.cleanup_ctx.append(_receipt_notices)


pusher_of = getter(PUSHER, "delivery.setup")
dispatcher_of = getter(DISPATCHER, "delivery.setup")
mode_watcher_of = getter(MODE_WATCHER, "delivery.setup")
receipt_notices_of = getter(RECEIPT_NOTICES, "delivery.setup")


async def _pusher(app: web.Application) -> AsyncIterator[None]:
    session = create_session(app[SETTINGS].pusher)
    app[PUSHER] = PusherClient(app[SETTINGS].pusher, session)
    yield
    await session.close()


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    """This replica's delivery; on the way out the loops stop first, then the pipeline drains
    and hands back what it holds."""
    settings, metrics = app[SETTINGS], metrics_of(app)
    config = settings.delivery
    outbox = Outbox(database_of(app), Claim(_replica_id(), config.lease_seconds))
    breaker = CircuitBreaker(
        failure_threshold=config.circuit_failure_threshold,
        cooldown_seconds=config.circuit_cooldown_seconds,
    )
    queue = DeliveryQueue(
        capacity=config.queue_capacity,
        max_calls=config.max_concurrent_calls,
        linger_seconds=config.batch_linger_seconds,
        breaker=breaker,
    )
    ledger = DeliveredLedger(outbox)
    outcomes = DeliveryOutcomes(outbox=outbox, ledger=ledger, metrics=metrics)
    pipeline = _pipeline(app, queue, outcomes, breaker)
    relay = Relay(
        queue=queue,
        pipeline=pipeline,
        outbox=outbox,
        breaker=breaker,
        poll_seconds=config.relay_poll_seconds,
    )
    app[MODE_WATCHER] = watcher = await _mode_watcher(app)
    app[DISPATCHER] = Dispatcher(
        queue=queue, pipeline=pipeline, mode=watcher.state, claim=outbox.claim
    )
    app[BREAKER] = breaker
    breaker.on_change(lambda state: metrics.circuit_open.set(1 if state is State.OPEN else 0))
    breaker.on_change(relay.circuit_changed)
    metrics.background_jobs.labels("active").set_function(lambda: pipeline.calls_in_flight)
    metrics.background_jobs.labels("pending").set_function(lambda: len(queue))
    async with running(
        relay.run(),
        ledger.run(),
        watcher.run(),
        probe_pusher(pusher_of(app), metrics, config.pusher_probe_seconds),
        renew_claims(outbox),
        show_backlog(outbox, metrics, config.backlog_refresh_seconds),
    ):
        log.info(
            "delivery started",
            extra={"replica": outbox.claim.replica, "mode": watcher.state.mode},
        )
        yield
    await pipeline.close(settings.shutdown_deadline_seconds)


async def _receipt_notices(app: web.Application) -> AsyncIterator[None]:
    """Their own scheduler, so best-effort notices never take a delivery call's place."""
    scheduler = aiojobs.Scheduler(
        limit=_NOTICE_CALLS,
        pending_limit=_NOTICE_BACKLOG,
        close_timeout=1.0,
        exception_handler=_job_failed,
    )
    app[RECEIPT_NOTICES] = ReceiptNotices(
        client=pusher_of(app),
        scheduler=scheduler,
        breaker=app[BREAKER],
        metrics=metrics_of(app),
        backlog=_NOTICE_BACKLOG,
    )
    yield
    await scheduler.wait_and_close(timeout=1.0)


async def _mode_watcher(app: web.Application) -> DeliveryModeWatcher:
    """The mode in force, with the shared override applied before the first request."""
    settings, metrics = app[SETTINGS], metrics_of(app)
    watcher = DeliveryModeWatcher(
        overrides=mode_overrides_of(app),
        state=DeliveryModeState(settings.delivery_mode),
        metrics=metrics,
        poll_seconds=settings.delivery_mode_poll_seconds,
    )
    metrics.show_delivery_mode(watcher.state.mode)
    await watcher.refresh()
    return watcher


def _pipeline(
    app: web.Application,
    queue: DeliveryQueue,
    outcomes: DeliveryOutcomes,
    breaker: CircuitBreaker,
) -> DeliveryPipeline:
    config = app[SETTINGS].delivery
    scheduler = aiojobs.aiohttp.get_scheduler_from_app(app)
    assert scheduler is not None, "aiojobs.aiohttp.setup() runs before this context"
    return DeliveryPipeline(
        queue=queue,
        client=pusher_of(app),
        scheduler=scheduler,
        breaker=breaker,
        policy=RetryPolicy(
            base_seconds=config.retry_base_seconds,
            cap_seconds=config.retry_cap_seconds,
            max_attempts=config.max_attempts,
            pause_seconds=config.quota_pause_seconds,
        ),
        outcomes=outcomes,
        tracer=delivery_tracer_of(app),
    )


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
