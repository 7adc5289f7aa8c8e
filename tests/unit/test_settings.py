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
    assert settings.auth.jwt_secret == Secret("jwt-secret-value")


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


JWKS = {
    "AUTH_JWKS_URL": "https://idp.example/realms/chat/protocol/openid-connect/certs",
    "AUTH_ISSUER": "https://idp.example/realms/chat",
    "AUTH_AUDIENCE": "chat-api",
}
NO_SECRET = {k: v for k, v in BASE.items() if k != "AUTH_JWT_SECRET"}


def test_a_provider_alone_is_enough_and_its_defaults_follow_the_contract() -> None:
    auth = Settings.from_env({**NO_SECRET, **JWKS}).auth
    assert auth.jwt_secret is None
    assert (auth.jwks_url, auth.issuer, auth.audience) == tuple(JWKS.values())
    assert auth.user_claim == "sub"
    assert auth.algorithms == ("RS256", "ES256")
    assert auth.methods == "RS256,ES256"
    assert Settings.from_env(BASE).auth.methods == "HS256"


def test_provider_settings_are_read() -> None:
    env = {**BASE, **JWKS, "AUTH_USER_CLAIM": "user_id", "AUTH_ALGORITHMS": "ES256, PS256"}
    auth = Settings.from_env(env).auth
    assert (auth.user_claim, auth.algorithms) == ("user_id", ("ES256", "PS256"))
    assert auth.methods == "HS256,ES256,PS256"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (NO_SECRET, "AUTH_JWT_SECRET is required unless AUTH_JWKS_URL is set"),
        ({**BASE, **JWKS, "AUTH_ISSUER": ""}, "AUTH_ISSUER is required with AUTH_JWKS_URL"),
        ({**BASE, **JWKS, "AUTH_AUDIENCE": " "}, "AUTH_AUDIENCE is required with AUTH_JWKS_URL"),
        ({**BASE, "AUTH_ISSUER": "https://idp"}, "AUTH_ISSUER is set but AUTH_JWKS_URL is not"),
        ({**BASE, "AUTH_AUDIENCE": "api"}, "AUTH_AUDIENCE is set but AUTH_JWKS_URL is not"),
        ({**BASE, **JWKS, "AUTH_JWKS_URL": "ftp://idp/certs"}, "AUTH_JWKS_URL must be"),
        ({**BASE, **JWKS, "AUTH_JWKS_URL": "certs.json"}, "AUTH_JWKS_URL must be"),
        # HS256 is AUTH_JWT_SECRET's alone; a JWKS never supplies an HMAC key, nor `none`
        ({**BASE, **JWKS, "AUTH_ALGORITHMS": "RS256,HS256"}, "AUTH_ALGORITHMS: 'HS256'"),
        ({**BASE, **JWKS, "AUTH_ALGORITHMS": "none"}, "AUTH_ALGORITHMS: 'none'"),
        ({**BASE, **JWKS, "AUTH_ALGORITHMS": " , "}, "AUTH_ALGORITHMS must name"),
    ],
)
def test_bad_provider_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
