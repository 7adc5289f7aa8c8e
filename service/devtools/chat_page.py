"""The dev chat page: two dev users talking through the JavaScript client (`client/`).

Served by the dev service itself (`python -m service dev`, and the browser tests), on the API's
own origin, so the page needs no CORS: `/chat/?user=1` and `/chat/?user=2`. Never part of
`serve`: its config endpoint hands out dev tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ..store import messages_of

PAGE_DIR = Path(__file__).resolve().parent / "chat"
CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"
#: pusher-js ships a UMD bundle for browsers, no ES module: the page loads it from the client's
#: own node_modules (`npm ci` in client/, which `make run` does)
PUSHER_JS = CLIENT_DIR / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"

#: the dev users the page knows: each chats with the other
DEV_USERS = (1, 2)

#: maps the client's one bare import to the UMD bundle's global
_PUSHER_MODULE = """\
import "/chat/vendor/pusher.min.js";
export default window.Pusher;
"""


@dataclass(frozen=True)
class ChatPageConfig:
    #: the bearer token of a dev user
    token_for: Callable[[int], str]
    pusher_key: str
    #: where the page's browser reaches the Pusher WebSocket (the sandbox)
    ws_port: int
    ws_host: str = "127.0.0.1"


CHAT_PAGE = web.AppKey("chat_page", ChatPageConfig)


def add_chat_page(app: web.Application, config: ChatPageConfig) -> None:
    """Routes under /chat/ on the dev service; `store.setup` must have run."""
    if not PUSHER_JS.exists():
        raise FileNotFoundError(f"{PUSHER_JS} is missing: run `npm ci` in {CLIENT_DIR}")
    app[CHAT_PAGE] = config
    app.router.add_get("/chat", _to_page)
    app.router.add_get("/chat/", _page)
    app.router.add_get("/chat/config.json", _config)
    app.router.add_get("/chat/vendor/pusher-js.mjs", _pusher_module)
    app.router.add_get("/chat/vendor/pusher.min.js", _pusher_bundle)
    app.router.add_static("/chat/client/", CLIENT_DIR / "src")
    app.router.add_static("/chat/static/", PAGE_DIR)


async def _to_page(request: web.Request) -> web.Response:
    raise web.HTTPFound("/chat/")


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE_DIR / "index.html")


async def _pusher_module(request: web.Request) -> web.Response:
    return web.Response(text=_PUSHER_MODULE, content_type="text/javascript")


async def _pusher_bundle(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PUSHER_JS)


async def _config(request: web.Request) -> web.Response:
    """What the page needs to connect as dev user `?user=` (1 or 2)."""
    config = request.app[CHAT_PAGE]
    asked = request.query.get("user", "1")
    user = int(asked) if asked.isdigit() else 0
    if user not in DEV_USERS:
        raise web.HTTPNotFound(text=f"the dev users are {DEV_USERS}")
    peer = next(other for other in DEV_USERS if other != user)
    conversation = await messages_of(request.app).conversation_between(user, peer)
    return web.json_response(
        {
            "userId": user,
            "peerId": peer,
            "conversationId": conversation,
            "token": config.token_for(user),
            "pusher": {
                "key": config.pusher_key,
                "cluster": "mt1",
                "wsHost": config.ws_host,
                "wsPort": config.ws_port,
                "forceTLS": False,
                "enabledTransports": ["ws"],
            },
        }
    )
