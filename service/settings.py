"""Settings: one frozen object built once from the environment and validated at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web

from .auth_settings import AuthSettings
from .environment import (
    Parser,
    choice,
    digits,
    overrides,
    port_number,
    port_or_none,
    positive_float,
    positive_float_or_unset,
    positive_int,
    postgresql_url,
    required,
    text,
    text_or_none,
)
from .secret import Secret

__all__ = ["AuthSettings", "DeliverySettings", "PusherSettings", "Secret", "Settings"]

DeliveryMode = Literal["async", "sync"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("async", "sync")


@dataclass(frozen=True, kw_only=True)
class PusherSettings:
    app_id: str
    key: str
    secret: Secret
    cluster: str = "mt1"
    host: str | None = None
    port: int | None = None
    scheme: Literal["http", "https"] = "https"
    timeout_seconds: float = 5.0
    max_connections: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PusherSettings:
        return cls(
            app_id=digits(required(env, "PUSHER_APP_ID"), "PUSHER_APP_ID"),
            key=required(env, "PUSHER_KEY"),
            secret=Secret(required(env, "PUSHER_SECRET")),
            **overrides(env, _PUSHER_VARIABLES),
        )


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    """How stored messages reach Pusher; see docs/delivery.md."""

    #: events held in memory waiting for a Pusher call; past it, sends leave the message to
    #: the relay (it is in the database either way) instead of waiting
    queue_capacity: int = 2000
    #: Pusher calls in flight at once (each carries up to 10 events)
    max_concurrent_calls: int = 8
    #: while events stream in, how long a call may wait for its batch to fill (never when
    #: quiet: a lone event goes at once); fewer, fuller calls cost both ends less CPU
    batch_linger_seconds: float = 0.002
    #: how long a replica owns the messages it claimed; after a crash others take over then
    lease_seconds: float = 30.0
    #: how often the relay looks for messages the fast path did not deliver
    relay_poll_seconds: float = 1.0
    #: how often the backlog gauges are refreshed from the database
    backlog_refresh_seconds: float = 5.0
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 60.0
    max_attempts: int = 8
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 5.0
    #: how long Pusher's 403 (over quota) suspends calls
    quota_pause_seconds: float = 60.0
    #: how often a signed GET /channels checks that Pusher answers (messages_pusher_up)
    pusher_probe_seconds: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeliverySettings:
        return cls(**overrides(env, _DELIVERY_VARIABLES))


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: Secret
    auth: AuthSettings
    pusher: PusherSettings
    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: Secret | None = None
    delivery_mode: DeliveryMode = "async"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    sentry_dsn: Secret | None = None
    #: the fallback poll of the shared delivery-mode override (NOTIFY is the fast path)
    delivery_mode_poll_seconds: float = 1.0
    db_pool_min_size: int = 2
    db_pool_max_size: int = 10
    db_command_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: float = 2.0
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    #: how long shutdown waits for Pusher calls in flight before cancelling them
    shutdown_deadline_seconds: float = 10.0
    max_body_bytes: int = 64 * 1024
    #: per-user send rate limit (per replica): sustained rate and burst
    send_rate_per_second: float = 10.0
    send_rate_burst: int = 30
    #: group commit: at most this many sends share one insert statement
    send_batch_max_rows: int = 100

    def secret_values(self) -> list[str]:
        """Every secret's value, for scrubbers that must never let one out."""
        found = [self.database_url, self.auth.jwt_secret, self.pusher.secret, self.admin_token]
        values = [secret.reveal() for secret in found if secret is not None]
        password = urlsplit(self.database_url.reveal()).password
        return values + ([password] if password else [])

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from environment variables (the contract's names);
        a variable that is not set leaves the field's default."""
        env = os.environ if env is None else env
        return cls(
            database_url=Secret(postgresql_url(required(env, "DATABASE_URL"))),
            auth=AuthSettings.from_env(env),
            pusher=PusherSettings.from_env(env),
            delivery=DeliverySettings.from_env(env),
            **overrides(env, _SERVICE_VARIABLES),
        )


SETTINGS = web.AppKey("settings", Settings)


def database_url_from_env(env: Mapping[str, str]) -> str:
    """DATABASE_URL alone, validated: all that the on-call commands need."""
    return postgresql_url(required(env, "DATABASE_URL"))


# Each table maps a variable to its field and a parser (service/environment.py); an absent
# variable keeps the field's default: defaults live in the dataclasses above and nowhere else.


def _secret_or_none(name: str, raw: str) -> Secret | None:
    return Secret(raw) if raw else None


_SERVICE_VARIABLES: dict[str, tuple[str, Parser]] = {
    "HOST": ("host", text),
    "PORT": ("port", port_number),
    "ADMIN_TOKEN": ("admin_token", _secret_or_none),
    "DELIVERY_MODE": ("delivery_mode", choice(DELIVERY_MODES)),
    "LOG_LEVEL": ("log_level", choice(("DEBUG", "INFO", "WARNING", "ERROR"), upper=True)),
    "LOG_FORMAT": ("log_format", choice(("json", "text"))),
    "SENTRY_DSN": ("sentry_dsn", _secret_or_none),
    "SHUTDOWN_DEADLINE_SECONDS": ("shutdown_deadline_seconds", positive_float_or_unset),
    "SEND_RATE_PER_SECOND": ("send_rate_per_second", positive_float_or_unset),
    "SEND_RATE_BURST": ("send_rate_burst", positive_int),
    "SEND_BATCH_MAX_ROWS": ("send_batch_max_rows", positive_int),
    "DB_CONNECT_TIMEOUT_SECONDS": ("db_connect_timeout_seconds", positive_float),
    "DB_COMMAND_TIMEOUT_SECONDS": ("db_command_timeout_seconds", positive_float),
}

_PUSHER_VARIABLES: dict[str, tuple[str, Parser]] = {
    "PUSHER_CLUSTER": ("cluster", text),
    "PUSHER_HOST": ("host", text_or_none),
    "PUSHER_PORT": ("port", port_or_none),
    "PUSHER_SCHEME": ("scheme", choice(("http", "https"))),
    "PUSHER_TIMEOUT_SECONDS": ("timeout_seconds", positive_float),
}

_DELIVERY_VARIABLES: dict[str, tuple[str, Parser]] = {
    "DELIVERY_QUEUE_CAPACITY": ("queue_capacity", positive_int),
    "DELIVERY_MAX_CONCURRENT_CALLS": ("max_concurrent_calls", positive_int),
    "DELIVERY_BATCH_LINGER_SECONDS": ("batch_linger_seconds", positive_float_or_unset),
    "DELIVERY_LEASE_SECONDS": ("lease_seconds", positive_float_or_unset),
    "RELAY_POLL_SECONDS": ("relay_poll_seconds", positive_float_or_unset),
    "DELIVERY_RETRY_BASE_SECONDS": ("retry_base_seconds", positive_float_or_unset),
    "DELIVERY_RETRY_CAP_SECONDS": ("retry_cap_seconds", positive_float_or_unset),
    "DELIVERY_MAX_ATTEMPTS": ("max_attempts", positive_int),
    "CIRCUIT_FAILURE_THRESHOLD": ("circuit_failure_threshold", positive_int),
    "CIRCUIT_COOLDOWN_SECONDS": ("circuit_cooldown_seconds", positive_float_or_unset),
    "PUSHER_PROBE_SECONDS": ("pusher_probe_seconds", positive_float_or_unset),
}
