"""The application factory: pure wiring, no environment reads, no I/O until start-up."""

from __future__ import annotations

from aiohttp import web
from opentelemetry import trace

from . import auth, delivery, http, store, telemetry
from .settings import SETTINGS, Settings


def create_app(
    settings: Settings, *, tracer_provider: trace.TracerProvider | None = None
) -> web.Application:
    """Build the service; each package wires itself. The order matters: telemetry's
    middleware is the outermost, and resources open in this order (pool, Pusher session,
    background jobs, delivery) and close in reverse, so deliveries drain before the Pusher
    session and the pool close. `tracer_provider` traces requests (server spans) and
    deliveries; database spans come from the process-wide asyncpg instrumentation
    (`telemetry.tracing.instrument`)."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    telemetry.setup(app, tracer_provider=tracer_provider)
    store.setup(app)
    delivery.setup(app)
    auth.setup(app)
    http.setup(app)
    return app
