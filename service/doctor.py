"""`python -m service doctor`: the first minute of an incident in one command. Each check
prints one line — OK, WARN or FAIL, what it found, and the RUNBOOK section to read — and the
exit status is the worst of them (0, 1 for warnings, 2 for failures). It needs DATABASE_URL and
the Pusher credentials; it never prints a secret or a message's content.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum

import aiohttp

from .auth.jwks import JwksKeys
from .auth_settings import AuthSettings
from .delivery.pusher_client import PusherClient, PusherError, PusherRejected, create_session
from .environment import ConfigError
from .errors import DatabaseUnavailable
from .settings import PusherSettings, Settings, database_url_from_env
from .store import queries
from .store.database import Database
from .store.migrate import applied_versions, available_migrations
from .store.mode_overrides import ModeOverrides

#: the thresholds of the alerts each check stands in for (alerts/message-send-service.rules.yml)
OLDEST_PENDING_WARN_SECONDS = 60.0  # UndeliveredMessageOld
CONNECT_TIMEOUT_SECONDS = 5.0


class Status(IntEnum):
    OK = 0
    WARN = 1
    FAIL = 2


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    #: the RUNBOOK.md section that says what to do ("" when all is well and nothing to read)
    section: str = ""

    def line(self) -> str:
        where = f"  -> RUNBOOK: {self.section}" if self.section else ""
        return f"{self.status.name:<4}  {self.check:<18} {self.detail}{where}"


#: a check that needs the database (and may read the environment it runs in)
_Check = Callable[[Database, Mapping[str, str]], Awaitable[Finding]]


def exit_code(findings: list[Finding]) -> int:
    return max((f.status for f in findings), default=Status.OK).value


async def diagnose(env: Mapping[str, str] = os.environ) -> list[Finding]:
    """Every check, in the order on-call reads them; a check that cannot run says why."""
    findings = [_configuration(env)]
    findings.append(await _pusher(env))
    findings.append(await _identity_provider(env))
    try:
        database_url = database_url_from_env(env)
    except ConfigError as error:
        findings.append(Finding("postgresql", Status.FAIL, f"not checked: {error}", _DB))
        return findings
    try:
        database = await Database.open(
            database_url, min_size=1, max_size=1, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
    except DatabaseUnavailable as error:
        cause = type(error.__cause__).__name__ if error.__cause__ else "unavailable"
        detail = f"does not answer ({cause}); not checked: {_NOT_CHECKED}"
        findings.append(Finding("postgresql", Status.FAIL, detail, _DB))
        return findings
    try:
        for check in _DATABASE_CHECKS:
            findings.append(await _guarded(check, database, env))
    finally:
        await database.close()
    return findings


_DB = "MessageSendFailing"
_NOT_CHECKED = "migrations, delivery mode, pending deliveries, dead letters, lapsed claims"
_BACKLOG = "Draining a backlog"


def _configuration(env: Mapping[str, str]) -> Finding:
    try:
        settings = Settings.from_env(env)
    except ConfigError as error:
        return Finding("configuration", Status.FAIL, str(error), "MessageSendServiceDown")
    hosts = "several hosts" if "," in settings.database_url.reveal().split("@")[-1] else "one host"
    return Finding(
        "configuration",
        Status.OK,
        f"parses (DATABASE_URL names {hosts}, DELIVERY_MODE={settings.delivery_mode})",
    )


async def _pusher(env: Mapping[str, str]) -> Finding:
    """A signed GET /apps/{id}/channels: reachable, and the key and secret accepted."""
    try:
        settings = PusherSettings.from_env(env)
    except ConfigError as error:
        return Finding("pusher", Status.FAIL, f"not checked: {error}", "PusherUnavailable")
    async with create_session(settings) as session:
        client = PusherClient(settings, session)
        try:
            channels = await client.channels()
        except PusherRejected as error:
            if error.status in (401, 403):
                detail = f"credentials refused (HTTP {error.status}): check PUSHER_KEY/SECRET"
            else:
                detail = f"answered HTTP {error.status}"
            return Finding("pusher", Status.FAIL, detail, "PusherUnavailable")
        except PusherError as error:
            name = type(error).__name__
            return Finding("pusher", Status.FAIL, f"unreachable ({name})", "PusherUnavailable")
    occupied = len(channels.get("channels", {}))
    return Finding("pusher", Status.OK, f"credentials accepted, {occupied} occupied channel(s)")


async def _identity_provider(env: Mapping[str, str]) -> Finding:
    """One fetch of the JWKS document, as a replica does it. A warning, not a failure: the
    replicas keep the keys they hold while the provider is away."""
    name, section = "identity provider", "MessageAuthKeysStale"
    try:
        auth = AuthSettings.from_env(env)
    except ConfigError as error:
        return Finding(name, Status.FAIL, f"not checked: {error}", section)
    if auth.jwks_url is None:
        return Finding(name, Status.OK, "none: HS256 tokens only (AUTH_JWKS_URL not set)")
    async with aiohttp.ClientSession() as session:
        keys = JwksKeys(auth, session)
        fetched = await keys.refresh()
    if not fetched:
        return Finding(name, Status.WARN, f"JWKS fetch failed: {keys.last_error}", section)
    return Finding(name, Status.OK, f"JWKS answers: {keys.count} signing key(s) ({auth.issuer})")


async def _guarded(check: _Check, db: Database, env: Mapping[str, str]) -> Finding:
    try:
        return await check(db, env)
    except DatabaseUnavailable as error:
        cause = type(error.__cause__).__name__ if error.__cause__ else "unavailable"
        name = check.__name__.removeprefix("_")
        return Finding(name.replace("_", " "), Status.FAIL, f"database error ({cause})", _DB)


async def _postgresql(database: Database, env: Mapping[str, str]) -> Finding:
    async with database.connection() as connection:
        version = await connection.fetchval("SHOW server_version")
        standby = await connection.fetchval("SELECT pg_is_in_recovery()")
    if standby:
        return Finding("postgresql", Status.FAIL, f"answers, but is a standby ({version})", _DB)
    return Finding("postgresql", Status.OK, f"answers, primary, PostgreSQL {version}")


async def _migrations(database: Database, env: Mapping[str, str]) -> Finding:
    async with database.connection() as connection:
        applied = await applied_versions(connection)
    missing = [m.name for m in available_migrations() if m.version not in applied]
    if missing:
        detail = f"{len(missing)} not applied: {', '.join(missing)} (python -m service migrate)"
        return Finding("migrations", Status.FAIL, detail, "MessageSendServiceDown")
    return Finding("migrations", Status.OK, f"all {len(applied)} applied")


async def _delivery_mode(database: Database, env: Mapping[str, str]) -> Finding:
    override = await ModeOverrides(database).current()
    if override is None:
        default = env.get("DELIVERY_MODE", "async").lower()
        detail = f"{default}: DELIVERY_MODE here, no override (each replica its own default)"
        return Finding("delivery mode", Status.OK, detail)
    detail = (
        f"{override.mode}, an override set by {override.changed_by}"
        f" at {override.changed_at.isoformat(timespec='seconds')}"
    )
    if override.mode == "sync":  # the rollback flag: sends wait for Pusher
        return Finding("delivery mode", Status.WARN, detail, "Rollback flag (delivery mode)")
    return Finding("delivery mode", Status.OK, detail)


async def _pending(database: Database, env: Mapping[str, str]) -> Finding:
    async with database.connection() as connection:
        row = await connection.fetchrow(queries.DELIVERY_BACKLOG)
    assert row is not None
    pending, oldest = int(row["pending"]), float(row["oldest_age"])
    detail = f"{pending} pending, oldest {oldest:.0f} s"
    if pending and oldest > OLDEST_PENDING_WARN_SECONDS:
        return Finding("pending deliveries", Status.WARN, detail, _BACKLOG)
    return Finding("pending deliveries", Status.OK, detail)


async def _dead_letters(database: Database, env: Mapping[str, str]) -> Finding:
    since = datetime.now(UTC) - timedelta(hours=1)
    async with database.connection() as connection:
        count = int(await connection.fetchval(queries.DEAD_LETTERS_COUNT_SINCE, since))
    if count:
        detail = f"{count} in the last hour (python -m service dead-letters list --since 1h)"
        return Finding("dead letters", Status.WARN, detail, "Dead letters")
    return Finding("dead letters", Status.OK, "none in the last hour")


async def _lapsed_claims(database: Database, env: Mapping[str, str]) -> Finding:
    async with database.connection() as connection:
        rows = await connection.fetch(queries.LAPSED_CLAIMS)
    if not rows:
        return Finding("lapsed claims", Status.OK, "no replica holds claims past its lease")
    held = ", ".join(f"{r['claimed_by']} ({r['messages']})" for r in rows)
    detail = f"held past their lease by {held}: another replica takes them on its next poll"
    return Finding("lapsed claims", Status.WARN, detail, _BACKLOG)


_DATABASE_CHECKS: list[_Check] = [
    _postgresql,
    _migrations,
    _delivery_mode,
    _pending,
    _dead_letters,
    _lapsed_claims,
]


async def run(env: Mapping[str, str] = os.environ) -> tuple[str, int]:
    findings = await asyncio.wait_for(diagnose(env), timeout=60)
    return "\n".join(f.line() for f in findings), exit_code(findings)
