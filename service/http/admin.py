"""The runtime rollback switch: GET/PUT /admin/delivery-mode, for ADMIN_TOKEN only."""

from __future__ import annotations

from aiohttp import web

from ..delivery import mode_watcher_of
from ..errors import NotFound
from ..settings import SETTINGS
from ..store import mode_overrides_of
from .auth import check_admin_token
from .bodies import json_body
from .schemas import DeliveryModeRequest


def _authorise(request: web.Request) -> None:
    admin_token = request.app[SETTINGS].admin_token
    if admin_token is None:
        raise NotFound()  # the admin API does not exist without ADMIN_TOKEN
    check_admin_token(request, admin_token)


def _current(request: web.Request) -> web.Response:
    state = mode_watcher_of(request.app).state
    return web.json_response({"mode": state.mode, "source": state.source})


async def get_delivery_mode(request: web.Request) -> web.Response:
    _authorise(request)
    return _current(request)


async def put_delivery_mode(request: web.Request) -> web.Response:
    """Set the mode for every replica (they follow within 2 s); `default` clears the override."""
    _authorise(request)
    body = await json_body(request, DeliveryModeRequest)
    changed_by = f"admin-api from {request.remote or 'unknown'}"
    mode = None if body.mode == "default" else body.mode
    await mode_overrides_of(request.app).set(mode, changed_by)
    await mode_watcher_of(request.app).refresh()  # this replica: at once
    return _current(request)
