"""Running `python -m service serve` as a real process from a test."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp

from service.devtools.postgres import free_port

from ..helpers import JWT_SECRET, auth


def service_env(database_url: str, sandbox, **extra: str) -> dict[str, str]:
    config = sandbox.state.config
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("PUSHER_", "DATABASE_", "AUTH_"))
    }
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "AUTH_JWT_SECRET": JWT_SECRET,
        "PUSHER_APP_ID": config.app_id,
        "PUSHER_KEY": config.key,
        "PUSHER_SECRET": config.secret,
        "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(sandbox.port),
        "PUSHER_SCHEME": "http",
        # the tests drive more sends per user than a person would
        "SEND_RATE_PER_SECOND": "100000",
        "SEND_RATE_BURST": "100000",
        **extra,
    }


class ServiceProcess:
    def __init__(self, database_url: str, sandbox, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._env = service_env(database_url, sandbox, PORT=str(self.port), **env)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> ServiceProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "serve", env=self._env,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{self.base}/healthz") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientConnectionError:
                    pass
                assert self.process.returncode is None, "service exited during start-up"
                await asyncio.sleep(0.05)
        raise AssertionError("service did not start")

    async def send(
        self, session: aiohttp.ClientSession, sender: int, recipient: int, content: str
    ) -> dict:
        async with session.post(
            f"{self.base}/api/messages/send",
            json={"recipientId": recipient, "content": content},
            headers=auth(sender),
        ) as response:
            assert response.status == 200
            return (await response.json())["message"]

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stderr(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        return (await self.process.stderr.read()).decode()
