"""Command line: `python -m service serve | migrate | dev`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from aiohttp import web

from .environment import ConfigError
from .errors import DatabaseUnavailable
from .settings import Settings
from .telemetry.logging import configure_logging

log = logging.getLogger("service")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service (applies pending migrations first)")
    commands.add_parser("migrate", help="apply pending migrations and exit")
    dev = commands.add_parser("dev", help="local PostgreSQL + Pusher sandbox + service, no config")
    dev.add_argument("--data-dir", type=Path, default=Path(".data"))
    mode = commands.add_parser(
        "delivery-mode", help="show or set the delivery mode for every replica (rollback switch)"
    )
    mode.add_argument("mode", nargs="?", choices=["async", "sync", "default"])
    letters = commands.add_parser("dead-letters", help="list or replay dead-lettered messages")
    letters.add_argument("action", choices=["list", "replay"])
    letters.add_argument("--since", default="24h", help="e.g. 30m, 6h, 2d (default 24h)")
    args = parser.parse_args(argv)
    try:
        if args.command in ("delivery-mode", "dead-letters"):
            return _operate(args)
        if args.command == "dev":
            configure_logging("INFO", "text")
            asyncio.run(_dev(args.data_dir))
            return 0
        settings = Settings.from_env()
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "migrate":
            _migrate(settings)
            return 0
        _migrate(settings)
        return _serve(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:
        print(f"database unavailable: {exc.__cause__ or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, OSError) as exc:  # e.g. no PostgreSQL binaries, a port in use
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _operate(args: argparse.Namespace) -> int:
    from . import oncall

    if args.command == "delivery-mode":
        text = asyncio.run(oncall.delivery_mode(args.mode))
    else:
        text = asyncio.run(oncall.dead_letters(args.action, args.since))
    oncall.emit(text)
    return 0


def _migrate(settings: Settings) -> None:
    from .store.database import database_errors_translated
    from .store.migrate import migrate

    with database_errors_translated():
        applied = asyncio.run(migrate(settings.database_url.reveal()))
    log.info("migrations up to date", extra={"applied": applied})


def _serve(settings: Settings) -> int:
    import os

    from .app import create_app
    from .event_loop import event_loop
    from .telemetry.sentry import configure_sentry
    from .telemetry.tracing import configure_tracing

    configure_sentry(
        settings.sentry_dsn.reveal() if settings.sentry_dsn else None,
        secrets=settings.secret_values(),
        environment=os.environ.get("SENTRY_ENVIRONMENT"),
    )
    tracer_provider = configure_tracing(os.environ)
    # run_app turns SIGTERM/SIGINT into a graceful shutdown: stop listening, let handlers
    # finish, then run the cleanup contexts (which drain background deliveries).
    web.run_app(
        create_app(settings, tracer_provider=tracer_provider),
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
    return 0


async def _dev(data_dir: Path) -> None:
    from .devtools.dev import run_dev

    await run_dev(data_dir)


if __name__ == "__main__":
    sys.exit(main())
