"""Fixtures: a real PostgreSQL started by the suite, the sandbox Pusher server, the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient, AiohttpServer

from service.app import create_app
from service.devtools.databases import migrated_database
from service.devtools.postgres import LocalPostgres
from service.sandbox import SANDBOX, SandboxConfig, SandboxState, create_sandbox_app
from service.settings import AuthSettings, PusherSettings, Secret, Settings

from .helpers import JWT_SECRET, AppClient, MakeClient
from .jwks_provider import Provider

TEST_DATABASE = "service_test"


def new_postgres() -> LocalPostgres:
    return LocalPostgres.started_in_temporary_folder(durable=False, prefix="msgsvc-pg-")


def remove_postgres(server: LocalPostgres) -> None:
    server.remove()


async def create_database(server: LocalPostgres, name: str) -> str:
    return await migrated_database(server, name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    server = new_postgres()
    yield server
    remove_postgres(server)


@pytest.fixture(scope="session")
def database_url(postgres: LocalPostgres) -> str:
    return asyncio.run(create_database(postgres, TEST_DATABASE))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test database, emptied before the test."""
    connection = await asyncpg.connect(database_url)
    await connection.execute(
        "TRUNCATE messages, conversations, delivery_mode_override, delivery_mode_changes"
        " RESTART IDENTITY CASCADE"
    )
    yield connection
    await connection.close()


@dataclass
class Sandbox:
    server: TestServer
    state: SandboxState

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def pusher_settings(self, **overrides: Any) -> PusherSettings:
        config = self.state.config
        settings = PusherSettings(
            app_id=config.app_id,
            key=config.key,
            secret=Secret(config.secret),
            host="127.0.0.1",
            port=self.port,
            scheme="http",
            timeout_seconds=2.0,
        )
        return replace(settings, **overrides)


@pytest.fixture
async def sandbox(aiohttp_server: AiohttpServer) -> Sandbox:
    app = create_sandbox_app(SandboxConfig())
    server = await aiohttp_server(app)
    return Sandbox(server, app[SANDBOX])


@pytest.fixture
def make_settings(database_url: str, sandbox: Sandbox) -> Callable[..., Settings]:
    def make(pusher: PusherSettings | None = None, **overrides: Any) -> Settings:
        return Settings(
            database_url=Secret(overrides.pop("database_url", database_url)),
            auth=overrides.pop("auth", AuthSettings(jwt_secret=Secret(JWT_SECRET))),
            admin_token=Secret("test-admin-token"),
            pusher=pusher or sandbox.pusher_settings(),
            **{"send_rate_per_second": 1e6, "send_rate_burst": 1_000_000, **overrides},
        )

    return make


@pytest.fixture
async def make_client(
    aiohttp_client: AiohttpClient,
    make_settings: Callable[..., Settings],
    db: asyncpg.Connection,
) -> MakeClient:
    async def make(**overrides: Any) -> AppClient:
        return await aiohttp_client(create_app(make_settings(**overrides)))

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> AppClient:
    return await make_client()


@pytest.fixture
async def provider(aiohttp_server: AiohttpServer) -> Provider:
    """The local identity provider (tests/jwks_provider.py), publishing an RSA key `rsa-1`
    and an EC key `ec-1`."""
    provider = Provider()
    provider.server = await aiohttp_server(provider.app())
    provider.add("rsa-1", "RSA")
    provider.add("ec-1", "EC")
    return provider
