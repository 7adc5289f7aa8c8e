"""Settings: one frozen object built once from the environment and validated at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlsplit

_T = TypeVar("_T", bound=str)

DeliveryMode = Literal["async", "sync"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("async", "sync")


class ConfigError(Exception):
    """The configuration is unusable; the message is one line meant for stderr."""


class Secret:
    """A string that never shows itself in `repr`, `str` or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


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
        defaults = cls()
        return cls(
            queue_capacity=_int(env, "DELIVERY_QUEUE_CAPACITY", defaults.queue_capacity),
            max_concurrent_calls=_int(
                env, "DELIVERY_MAX_CONCURRENT_CALLS", defaults.max_concurrent_calls
            ),
            batch_linger_seconds=_float(
                env, "DELIVERY_BATCH_LINGER_SECONDS", defaults.batch_linger_seconds
            ),
            lease_seconds=_float(env, "DELIVERY_LEASE_SECONDS", defaults.lease_seconds),
            relay_poll_seconds=_float(env, "RELAY_POLL_SECONDS", defaults.relay_poll_seconds),
            retry_base_seconds=_float(
                env, "DELIVERY_RETRY_BASE_SECONDS", defaults.retry_base_seconds
            ),
            retry_cap_seconds=_float(env, "DELIVERY_RETRY_CAP_SECONDS", defaults.retry_cap_seconds),
            max_attempts=_int(env, "DELIVERY_MAX_ATTEMPTS", defaults.max_attempts),
            circuit_failure_threshold=_int(
                env, "CIRCUIT_FAILURE_THRESHOLD", defaults.circuit_failure_threshold
            ),
            circuit_cooldown_seconds=_float(
                env, "CIRCUIT_COOLDOWN_SECONDS", defaults.circuit_cooldown_seconds
            ),
            pusher_probe_seconds=_float(env, "PUSHER_PROBE_SECONDS", defaults.pusher_probe_seconds),
        )


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: Secret
    auth_jwt_secret: Secret
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

    def secret_values(self) -> list[str]:
        """Every secret's value, for scrubbers that must never let one out."""
        found = [self.database_url, self.auth_jwt_secret, self.pusher.secret, self.admin_token]
        values = [secret.reveal() for secret in found if secret is not None]
        password = urlsplit(self.database_url.reveal()).password
        return values + ([password] if password else [])

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from environment variables (the contract's names)."""
        env = os.environ if env is None else env
        return cls(
            database_url=Secret(_database_url(_required(env, "DATABASE_URL"))),
            auth_jwt_secret=Secret(_required(env, "AUTH_JWT_SECRET")),
            admin_token=Secret(env["ADMIN_TOKEN"]) if env.get("ADMIN_TOKEN") else None,
            pusher=_pusher_from_env(env),
            host=env.get("HOST", "127.0.0.1"),
            port=_port(env.get("PORT", "8080"), "PORT"),
            delivery_mode=_choice(env, "DELIVERY_MODE", DELIVERY_MODES, "async"),
            log_level=_choice(
                env, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True
            ),
            log_format=_choice(env, "LOG_FORMAT", ("json", "text"), "json"),
            delivery=DeliverySettings.from_env(env),
            sentry_dsn=Secret(env["SENTRY_DSN"]) if env.get("SENTRY_DSN") else None,
            shutdown_deadline_seconds=_float(env, "SHUTDOWN_DEADLINE_SECONDS", 10.0),
            send_rate_per_second=_float(env, "SEND_RATE_PER_SECOND", 10.0),
            send_rate_burst=_int(env, "SEND_RATE_BURST", 30),
        )


def database_url_from_env(env: Mapping[str, str]) -> str:
    """DATABASE_URL alone, validated: all that the on-call commands need."""
    return _database_url(_required(env, "DATABASE_URL"))


def _pusher_from_env(env: Mapping[str, str]) -> PusherSettings:
    host = env.get("PUSHER_HOST") or None
    return PusherSettings(
        app_id=_digits(_required(env, "PUSHER_APP_ID"), "PUSHER_APP_ID"),
        key=_required(env, "PUSHER_KEY"),
        secret=Secret(_required(env, "PUSHER_SECRET")),
        cluster=env.get("PUSHER_CLUSTER", "mt1"),
        host=host,
        port=_port(env["PUSHER_PORT"], "PUSHER_PORT") if env.get("PUSHER_PORT") else None,
        scheme=_choice(env, "PUSHER_SCHEME", ("http", "https"), "https"),
        timeout_seconds=_positive_float(
            env.get("PUSHER_TIMEOUT_SECONDS", "5"), "PUSHER_TIMEOUT_SECONDS"
        ),
    )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required but not set")
    return value


def _digits(value: str, name: str) -> str:
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(f"{name} must be a number (Pusher app ids are), got {value!r}")
    return value


def _database_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError("DATABASE_URL must look like postgresql://user:pass@host:port/db")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError("DATABASE_URL has an invalid port") from None
    return value


def _port(value: str, name: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {port}")
    return port


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return default if raw is None or raw == "" else _positive_float(raw, name)


def _positive_float(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return number


def _choice(
    env: Mapping[str, str], name: str, choices: tuple[_T, ...], default: _T, *, upper: bool = False
) -> _T:
    raw = env.get(name, default).strip()
    value = raw.upper() if upper else raw.lower()
    for choice in choices:
        if value == choice:
            return choice
    raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
