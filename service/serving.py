"""What `python -m service serve` runs, in one place: migrations first, then the app until
SIGTERM. `extend` lets a dev variant (service.devtools.chat_serve) add routes to the very same
app and run it the very same way."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from aiohttp import web

from .app import create_app
from .event_loop import event_loop
from .settings import Settings
from .store.database import database_errors_translated
from .store.migrate import migrate
from .telemetry.sentry import configure_sentry
from .telemetry.tracing import configure_tracing

log = logging.getLogger("service")


def migrate_now(settings: Settings) -> None:
    """Apply pending migrations; `DatabaseUnavailable` when the database cannot be reached."""
    with database_errors_translated():
        applied = asyncio.run(migrate(settings.database_url.reveal()))
    log.info("migrations up to date", extra={"applied": applied})


def serve(settings: Settings, *, extend: Callable[[web.Application], None] | None = None) -> None:
    configure_sentry(
        settings.sentry_dsn.reveal() if settings.sentry_dsn else None,
        secrets=settings.secret_values(),
        environment=os.environ.get("SENTRY_ENVIRONMENT"),
    )
    tracer_provider = configure_tracing(os.environ)
    app = create_app(settings, tracer_provider=tracer_provider)
    if extend is not None:
        extend(app)
    # run_app turns SIGTERM/SIGINT into a graceful shutdown: stop listening, let handlers
    # finish, then run the cleanup contexts (which drain background deliveries).
    web.run_app(
        app,
        loop=event_loop(os.environ),
        host=settings.host,
        port=settings.port,
        backlog=2048,
        access_log=None,
        shutdown_timeout=settings.shutdown_deadline_seconds,
        print=None,
    )
    if tracer_provider is not None:
        tracer_provider.shutdown()  # flush the last spans
    log.info("stopped")
