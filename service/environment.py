"""Reading environment variables: one parser per kind of value, and tables of them applied
over a dataclass's defaults. A parser takes (variable name, raw value) and returns the value,
raises `ConfigError` with one line for stderr, or returns UNSET to keep the field's default
(the numeric ones do for an empty string)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .database_url import check_cluster_url, hosts_of

_T = TypeVar("_T", bound=str)
_N = TypeVar("_N", int, float)


class ConfigError(Exception):
    """The configuration is unusable; the message is one line meant for stderr."""


class Unset(Enum):
    UNSET = "unset"


UNSET = Unset.UNSET
Parser = Callable[[str, str], object]


def overrides(env: Mapping[str, str], table: Mapping[str, tuple[str, Parser]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (field_name, parse) in table.items():
        if name in env:
            value = parse(name, env[name])
            if value is not UNSET:
                values[field_name] = value
    return values


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required but not set")
    return value


def digits(value: str, name: str) -> str:
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(f"{name} must be a number (Pusher app ids are), got {value!r}")
    return value


def postgresql_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError("DATABASE_URL must look like postgresql://user:pass@host:port/db")
    try:
        hosts_of(value)  # each host's port
    except ValueError:
        raise ConfigError("DATABASE_URL has an invalid port") from None
    try:
        check_cluster_url(value)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return value


def text(name: str, raw: str) -> str:
    return raw


def text_or_none(name: str, raw: str) -> str | None:
    return raw or None


def port_number(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {port}")
    return port


def port_or_none(name: str, raw: str) -> int | None:
    return port_number(name, raw) if raw else None


def positive_int(name: str, raw: str) -> int | Unset:
    return UNSET if raw == "" else _positive(int, "an integer", name, raw)


def positive_float_or_unset(name: str, raw: str) -> float | Unset:
    return UNSET if raw == "" else positive_float(name, raw)


def positive_float(name: str, raw: str) -> float:
    return _positive(float, "a number", name, raw)


def _positive(convert: Callable[[str], _N], kind: str, name: str, raw: str) -> _N:
    try:
        value = convert(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def choice(choices: tuple[_T, ...], *, upper: bool = False) -> Callable[[str, str], _T]:
    def parse(name: str, raw: str) -> _T:
        value = raw.strip().upper() if upper else raw.strip().lower()
        for choice in choices:
            if value == choice:
                return choice
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw.strip()!r}")

    return parse
