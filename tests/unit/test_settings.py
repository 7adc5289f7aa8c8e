from __future__ import annotations

import pytest

from service.database_url import hosts_of
from service.environment import ConfigError
from service.settings import Secret, Settings

BASE = {
    "DATABASE_URL": "postgresql://u:dbpass@localhost:5432/db",
    "AUTH_JWT_SECRET": "jwt-secret-value",
    "PUSHER_APP_ID": "123",
    "PUSHER_KEY": "key",
    "PUSHER_SECRET": "pusher-secret-value",
}


def test_defaults_follow_the_contract() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.delivery_mode == "async"
    assert settings.pusher.cluster == "mt1"
    assert settings.pusher.timeout_seconds == 5
    assert settings.admin_token is None
    assert (settings.log_level, settings.log_format) == ("INFO", "json")


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_env({**BASE, "ADMIN_TOKEN": "admin-token-value"})
    text = repr(settings) + str(settings)
    for secret in ("dbpass", "jwt-secret-value", "pusher-secret-value", "admin-token-value"):
        assert secret not in text
    assert settings.auth_jwt_secret.reveal() == "jwt-secret-value"


@pytest.mark.parametrize(
    "name", ["DATABASE_URL", "AUTH_JWT_SECRET", "PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET"]
)
def test_required_variables(name: str) -> None:
    env = {k: v for k, v in BASE.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "http://x"),
        ("DATABASE_URL", "postgresql://h:notaport/db"),
        ("DATABASE_URL", "postgresql://u@a:5432,b:99999/db?target_session_attrs=read-write"),
        # several hosts, but nothing says which is the primary: writes could go to a standby
        ("DATABASE_URL", "postgresql://u@a:5432,b:5432/db"),
        ("DATABASE_URL", "postgresql://u@a,b/db?target_session_attrs=any"),
        ("DB_COMMAND_TIMEOUT_SECONDS", "0"),
        ("DB_CONNECT_TIMEOUT_SECONDS", "soon"),
        ("PORT", "70000"),
        ("PUSHER_PORT", "x"),
        ("PUSHER_SCHEME", "ftp"),
        ("PUSHER_TIMEOUT_SECONDS", "0"),
        ("PUSHER_APP_ID", "abc"),
        ("DELIVERY_MODE", "maybe"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**BASE, name: value})


def test_a_cluster_url_names_every_host() -> None:
    url = "postgresql://u:p@db-a:5433,[::1]:5434,db-c/db?target_session_attrs=read-write"
    settings = Settings.from_env({**BASE, "DATABASE_URL": url, "DB_CONNECT_TIMEOUT_SECONDS": "0.5"})
    assert settings.database_url.reveal() == url
    assert hosts_of(url) == [("db-a", 5433), ("::1", 5434), ("db-c", None)]
    assert settings.db_connect_timeout_seconds == 0.5
    assert settings.db_command_timeout_seconds == 5  # the default


def test_pusher_host_overrides() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "PUSHER_HOST": "127.0.0.1",
            "PUSHER_PORT": "6001",
            "PUSHER_SCHEME": "http",
            "DELIVERY_MODE": "SYNC",
        }
    )
    assert (settings.pusher.host, settings.pusher.port, settings.pusher.scheme) == (
        "127.0.0.1",
        6001,
        "http",
    )
    assert settings.delivery_mode == "sync"


def test_secret_equality_without_exposure() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
