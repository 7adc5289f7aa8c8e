"""Command line: `python -m service serve | migrate | dev | delivery-mode | dead-letters |
doctor`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .exits import exit_status
from .settings import Settings
from .telemetry.logging import configure_logging


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
    commands.add_parser(
        "doctor", help="check configuration, PostgreSQL, Pusher and delivery; exit 0/1/2"
    )
    args = parser.parse_args(argv)
    return exit_status(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.command == "doctor":
        return _doctor()
    if args.command in ("delivery-mode", "dead-letters"):
        return _operate(args)
    if args.command == "dev":
        configure_logging("INFO", "text")
        asyncio.run(_dev(args.data_dir))
        return 0
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    _migrate(settings)
    if args.command == "migrate":
        return 0
    return _serve(settings)


def _operate(args: argparse.Namespace) -> int:
    from . import oncall

    if args.command == "delivery-mode":
        text = asyncio.run(oncall.delivery_mode(args.mode))
    else:
        text = asyncio.run(oncall.dead_letters(args.action, args.since))
    oncall.emit(text)
    return 0


def _doctor() -> int:
    from . import doctor

    text, status = asyncio.run(doctor.run())
    print(text)
    return status


def _migrate(settings: Settings) -> None:
    from .serving import migrate_now

    migrate_now(settings)


def _serve(settings: Settings) -> int:
    from .serving import serve

    serve(settings)
    return 0


async def _dev(data_dir: Path) -> None:
    from .devtools.dev import run_dev

    await run_dev(data_dir)


if __name__ == "__main__":
    sys.exit(main())
