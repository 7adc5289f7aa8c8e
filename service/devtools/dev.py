"""`python -m service dev`: the embedded default, with no configuration at all.

Starts a local PostgreSQL (data kept under .data/), the local Pusher-compatible server and the
service, with the dev chat page, in one process, and prints what a newcomer needs to send a
message and watch it arrive.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import jwt
from aiohttp import web

from ..app import create_app
from ..sandbox import SandboxConfig, create_sandbox_app
from ..settings import AuthSettings, PusherSettings, Secret, Settings
from .chat_page import ChatPageConfig, add_chat_page
from .databases import migrated_database
from .postgres import LocalPostgres

DEV_JWT_SECRET = "dev-only-jwt-secret-not-for-production"
DEV_ADMIN_TOKEN = "dev-only-admin-token"
DEV_DATABASE = "messages"


def dev_token(user_id: int, secret: str = DEV_JWT_SECRET, days: int = 30) -> str:
    claims = {"sub": str(user_id), "exp": int(time.time()) + days * 86400}
    return jwt.encode(claims, secret, algorithm="HS256")


async def run_dev(data_dir: Path) -> None:
    port = int(os.environ.get("PORT", "8080"))
    pusher_port = int(os.environ.get("DEV_PUSHER_PORT", "6001"))
    postgres = LocalPostgres(data_dir / "postgres", int(os.environ.get("DEV_PG_PORT", "54329")))
    postgres.initialise()
    if not postgres.is_running():
        postgres.start()
    try:
        database_url = await migrated_database(postgres, DEV_DATABASE, exist_ok=True)
        sandbox = SandboxConfig()
        settings = Settings(
            database_url=Secret(database_url),
            auth=AuthSettings(jwt_secret=Secret(DEV_JWT_SECRET)),
            admin_token=Secret(DEV_ADMIN_TOKEN),
            pusher=PusherSettings(
                app_id=sandbox.app_id,
                key=sandbox.key,
                secret=Secret(sandbox.secret),
                host="127.0.0.1",
                port=pusher_port,
                scheme="http",
            ),
            host=os.environ.get("HOST", "127.0.0.1"),
            port=port,
            log_format="text",
        )
        app = create_app(settings)
        add_chat_page(
            app,
            ChatPageConfig(token_for=dev_token, pusher_key=sandbox.key, ws_port=pusher_port),
        )
        runners = [
            await _start(create_sandbox_app(sandbox), "127.0.0.1", pusher_port),
            await _start(app, settings.host, port),
        ]
        _print_welcome(settings.host, port, pusher_port, database_url)
        await _wait_for_signal()
        for runner in reversed(runners):
            await runner.cleanup()
    finally:
        postgres.stop()


async def _start(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=2048).start()
    except BaseException:
        await runner.cleanup()  # close whatever the cleanup contexts had opened
        raise
    return runner


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _print_welcome(host: str, port: int, pusher_port: int, database_url: str) -> None:
    alice, bob = dev_token(1), dev_token(2)
    base = f"http://{host}:{port}"
    print(
        f"""
Message send service (dev) is up.

  service          {base}          (health: {base}/healthz)
  chat page        {base}/chat/?user=1   and   {base}/chat/?user=2   (open both)
  Pusher sandbox   http://127.0.0.1:{pusher_port}   (app id 1, key sandbox-key)
  PostgreSQL       {database_url}   (data in .data/postgres)
  admin token      {DEV_ADMIN_TOKEN}

Dev user tokens (HS256, secret {DEV_JWT_SECRET!r}):
  user 1: {alice}
  user 2: {bob}

Send a message from user 1 to user 2:
  curl -s -X POST {base}/api/messages/send -H 'Content-Type: application/json' \\
       -H 'Authorization: Bearer {alice}' -d '{{"recipientId": 2, "content": "hello"}}'

Watch it arrive at Pusher (the events the sandbox accepted):
  curl -s http://127.0.0.1:{pusher_port}/_sandbox/events

Read the conversation as user 2:
  curl -s {base}/api/conversations/1/messages -H 'Authorization: Bearer {bob}'

Ctrl-C stops everything (the database keeps its data).
""",
        flush=True,
    )
