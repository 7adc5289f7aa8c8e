"""`store.setup(app)`: the database for the app's lifetime, and its stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..settings import SETTINGS
from ..wiring import getter
from .database import Database
from .messages import MessageStore
from .mode_overrides import ModeOverrides

DATABASE = web.AppKey("database", Database)
MESSAGES = web.AppKey("messages", MessageStore)
MODE_OVERRIDES = web.AppKey("mode_overrides", ModeOverrides)


def setup(app: web.Application) -> None:
    """Open the pool at start-up, close it last (after delivery has drained)."""
    app.cleanup_ctx.append(_database)


async def _database(app: web.Application) -> AsyncIterator[None]:
    database = await Database.for_service(app[SETTINGS])
    app[DATABASE] = database
    app[MESSAGES] = MessageStore(database)
    app[MODE_OVERRIDES] = ModeOverrides(database)
    yield
    await database.close()


database_of = getter(DATABASE, "store.setup")
messages_of = getter(MESSAGES, "store.setup")
mode_overrides_of = getter(MODE_OVERRIDES, "store.setup")
