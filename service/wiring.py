"""What every package's `setup(app)` shares: typed getters that fail loudly, and long-lived
background loops tied to a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


def resource(app: web.Application, key: web.AppKey[T], setup: str) -> T:
    """`app[key]`, or one clear error naming the `setup` that was skipped (aiojobs' getter
    does the same), instead of a bare KeyError from deep inside a handler."""
    try:
        return app[key]
    except KeyError:
        raise RuntimeError(f"{setup}(app) has not run, or the app has not started") from None


def getter(key: web.AppKey[T], setup: str) -> Callable[[web.Application], T]:
    """The getter of one resource, e.g. `messages_of = getter(MESSAGES, "store.setup")`."""

    def get(app: web.Application) -> T:
        return resource(app, key, setup)

    return get


@contextlib.asynccontextmanager
async def running(*loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Long-lived loops for the lifetime of the block: cancelled and awaited at its end."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
