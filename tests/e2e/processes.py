"""Running `python -m service serve` as a real process from a test."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import aiohttp

from service.devtools.postgres import free_port
from service.devtools.service_env import service_environment

from ..conftest import Sandbox
from ..helpers import JWT_SECRET, auth


def service_env(database_url: str, sandbox: Sandbox, **extra: str) -> dict[str, str]:
    return service_environment(
        database_url=database_url,
        sandbox=sandbox.state.config,
        sandbox_port=sandbox.port,
        jwt_secret=JWT_SECRET,
        **extra,
    )


class ServiceProcess:
    def __init__(self, database_url: str, sandbox: Sandbox, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._env = service_env(database_url, sandbox, PORT=str(self.port), **env)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> ServiceProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service",
            "serve",
            env=self._env,
            stderr=asyncio.subprocess.PIPE,
        )
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
    ) -> dict[str, Any]:
        async with session.post(
            f"{self.base}/api/messages/send",
            json={"recipientId": recipient, "content": content},
            headers=auth(sender),
        ) as response:
            assert response.status == 200
            message: dict[str, Any] = (await response.json())["message"]
            return message

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
