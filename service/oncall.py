"""On-call commands: `delivery-mode` and `dead-letters`. They need only DATABASE_URL."""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import asyncpg

from .settings import DELIVERY_MODES, ConfigError, database_url_from_env
from .store.operations import (
    dead_letters_since,
    read_mode_override,
    replay_dead_letters_since,
    write_mode_override,
)


def who() -> str:
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


async def delivery_mode(choice: str | None, env: Mapping[str, str] = os.environ) -> str:
    """Show the mode in force for every replica, or set it (`default` clears the override)."""
    default = env.get("DELIVERY_MODE", "async").lower()
    connection = await asyncpg.connect(database_url_from_env(env), timeout=5)
    try:
        if choice is not None:
            mode = None if choice == "default" else choice
            if mode is not None and mode not in DELIVERY_MODES:
                raise ConfigError(f"mode must be async, sync or default, got {choice!r}")
            await write_mode_override(connection, mode, who())
        override = await read_mode_override(connection)
    finally:
        await connection.close()
    if override is None:
        return f"mode: {default} (source: default, from DELIVERY_MODE on each replica)"
    return (
        f"mode: {override.mode} (source: override, set by {override.changed_by} at "
        f"{override.changed_at.isoformat()}); every replica follows within 2 s"
    )


def parse_since(text: str) -> datetime:
    """`30m`, `6h`, `2d` ago."""
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if match is None:
        raise ConfigError(f"--since takes e.g. 30m, 6h or 2d, got {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})


async def dead_letters(action: str, since: str, env: Mapping[str, str] = os.environ) -> str:
    start = parse_since(since)
    connection = await asyncpg.connect(database_url_from_env(env), timeout=5)
    try:
        if action == "replay":
            count = await replay_dead_letters_since(connection, start)
            return f"{count} dead-lettered message(s) since {start.isoformat()} are pending again"
        letters = await dead_letters_since(connection, start)
    finally:
        await connection.close()
    lines = [f"{len(letters)} dead-lettered message(s) since {start.isoformat()}"]
    lines += [
        f"  id={d.id} conversation={d.conversation_id} created={d.created_at.isoformat()} "
        f"dead={d.dead_lettered_at.isoformat()} attempts={d.attempts} reason={d.reason}"
        for d in letters
    ]
    return "\n".join(lines)


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
