"""Private channel authorisation for pusher-js: participants only."""

from __future__ import annotations

import re

from aiohttp import web

from ..auth import tokens_of
from ..delivery import pusher_of
from ..delivery.events import CHANNEL_PREFIX
from ..errors import Forbidden
from ..store import messages_of
from .bodies import form_or_json_body
from .schemas import PusherAuthRequest

_CONVERSATION_CHANNEL = re.compile(rf"^{re.escape(CHANNEL_PREFIX)}([1-9][0-9]{{0,18}})$")


async def pusher_auth(request: web.Request) -> web.Response:
    """Sign `<socket_id>:<channel>` for a participant of the conversation; 403 otherwise,
    whether or not the conversation exists."""
    user_id = await tokens_of(request.app).authenticate(request)
    body = await form_or_json_body(request, PusherAuthRequest)
    match = _CONVERSATION_CHANNEL.match(body.channel_name)
    if match is None:
        raise Forbidden("Only private-conversation-{id} channels can be authorised.")
    participants = await messages_of(request.app).participants(int(match.group(1)))
    if participants is None or user_id not in participants:
        raise Forbidden("You are not a participant of this conversation.")
    signature = pusher_of(request.app).authenticate(body.channel_name, body.socket_id)
    return web.json_response(signature)
