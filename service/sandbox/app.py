"""The sandbox application: its state under `SANDBOX` and the Pusher and control routes."""

from __future__ import annotations

from aiohttp import web

from . import control, http_api, websocket
from .state import SANDBOX, SandboxConfig, SandboxState


def create_sandbox_app(config: SandboxConfig | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SANDBOX] = SandboxState(config=config or SandboxConfig())
    http_api.add_routes(app)
    websocket.add_routes(app)
    control.add_routes(app)
    return app
