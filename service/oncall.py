"""On-call commands: `delivery-mode` and `dead-letters`. They need only DATABASE_URL."""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from .environment import ConfigError
from .settings import DELIVERY_MODES, DeliveryMode, database_url_from_env
from .store.database import Database
from .store.dead_letters import DeadLetters
from .store.mode_overrides import ModeOverrides


def who() -> str:
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


async def _database(env: Mapping[str, str]) -> Database:
    return await Database.open(database_url_from_env(env), connect_timeout=5.0)


async def delivery_mode(choice: str | None, env: Mapping[str, str] = os.environ) -> str:
    """Show the mode in force for every replica, or set it (`default` clears the override)."""
    default = env.get("DELIVERY_MODE", "async").lower()
    mode = _override(choice)
    database = await _database(env)
    try:
        overrides = ModeOverrides(database)
        if choice is not None:
            await overrides.set(mode, who())
        override = await overrides.current()
    finally:
        await database.close()
    if override is None:
        return f"mode: {default} (source: default, from DELIVERY_MODE on each replica)"
    return (
        f"mode: {override.mode} (source: override, set by {override.changed_by} at "
        f"{override.changed_at.isoformat()}); every replica follows within 2 s"
    )


def _override(choice: str | None) -> DeliveryMode | None:
    """The override a choice sets: None for `default` (and for no choice: nothing is set)."""
    if choice is None or choice == "default":
        return None
    for mode in DELIVERY_MODES:
        if choice == mode:
            return mode
    raise ConfigError(f"mode must be async, sync or default, got {choice!r}")


def parse_since(text: str) -> datetime:
    """`30m`, `6h`, `2d` ago."""
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if match is None:
        raise ConfigError(f"--since takes e.g. 30m, 6h or 2d, got {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})


async def dead_letters(action: str, since: str, env: Mapping[str, str] = os.environ) -> str:
    start = parse_since(since)
    database = await _database(env)
    try:
        letters = DeadLetters(database)
        if action == "replay":
            count = await letters.replay_since(start)
            return f"{count} dead-lettered message(s) since {start.isoformat()} are pending again"
        found = await letters.since(start)
    finally:
        await database.close()
    lines = [f"{len(found)} dead-lettered message(s) since {start.isoformat()}"]
    lines += [
        f"  id={d.id} conversation={d.conversation_id} created={d.created_at.isoformat()} "
        f"dead={d.dead_lettered_at.isoformat()} attempts={d.attempts} reason={d.reason}"
        for d in found
    ]
    return "\n".join(lines)


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
