"""Pusher WebSocket protocol 7, as pusher-js speaks it: connect, subscribe, ping, receive."""

from __future__ import annotations

import json
import secrets
from hmac import compare_digest
from typing import Any

from aiohttp import WSMsgType, web

from .protocol import PROTOCOL_VERSION, is_channel_name
from .signing import channel_auth
from .state import SANDBOX, SandboxState


def add_routes(app: web.Application) -> None:
    app.router.add_get("/app/{key}", connect)


async def connect(request: web.Request) -> web.WebSocketResponse:
    state = request.app[SANDBOX]
    if state.refusing_connections():
        raise web.HTTPServiceUnavailable(text="connections are being refused (sandbox fault)")
    socket = web.WebSocketResponse(heartbeat=None)
    await socket.prepare(request)
    if request.match_info["key"] != state.config.key:
        await _send(
            socket, "pusher:error", {"code": 4001, "message": "App key not in this cluster"}
        )
        await socket.close(code=4001)
        return socket
    if request.query.get("protocol") != PROTOCOL_VERSION:
        await _send(socket, "pusher:error", {"code": 4007, "message": "Unsupported protocol"})
        await socket.close(code=4007)
        return socket
    socket_id = f"{secrets.randbelow(10**9)}.{secrets.randbelow(10**9)}"
    state.sockets[socket] = socket_id
    established = {"socket_id": socket_id, "activity_timeout": state.config.activity_timeout}
    # pusher-js wants `data` as a JSON *string* here.
    await socket.send_json(
        {"event": "pusher:connection_established", "data": json.dumps(established)}
    )
    try:
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                await _handle(state, socket, socket_id, frame.data)
    finally:
        state.sockets.pop(socket, None)
        for members in state.subscriptions.values():
            members.discard(socket)
    return socket


async def _handle(
    state: SandboxState, socket: web.WebSocketResponse, socket_id: str, text: str
) -> None:
    try:
        message = json.loads(text)
        event, data = message["event"], message.get("data") or {}
        if isinstance(data, str):
            data = json.loads(data) if data else {}
    except (ValueError, KeyError, TypeError):
        await _send(socket, "pusher:error", {"code": None, "message": "Malformed message"})
        return
    if event == "pusher:ping":
        await _send(socket, "pusher:pong", {})
    elif event == "pusher:subscribe":
        await _subscribe(state, socket, socket_id, data)
    elif event == "pusher:unsubscribe":
        state.subscriptions.get(str(data.get("channel")), set()).discard(socket)
    elif isinstance(event, str) and event.startswith("client-"):
        await _send(
            socket, "pusher:error", {"code": None, "message": "Client events are not enabled"}
        )


async def _subscribe(
    state: SandboxState, socket: web.WebSocketResponse, socket_id: str, data: dict[str, Any]
) -> None:
    channel = data.get("channel")
    if not is_channel_name(channel):
        await _send(socket, "pusher:error", {"code": None, "message": "Invalid channel name"})
        return
    if channel.startswith(("private-", "presence-")):
        expected = channel_auth(
            key=state.config.key, secret=state.config.secret, socket_id=socket_id, channel=channel
        )
        if channel.startswith("presence-") or not compare_digest(
            str(data.get("auth", "")), expected
        ):
            # What Pusher itself sends for a bad private-channel signature.
            message = f"Invalid signature: Expected HMAC SHA256 hex digest of {socket_id}:{channel}"
            await _send(socket, "pusher:error", {"code": None, "message": message})
            return
    state.subscriptions.setdefault(channel, set()).add(socket)
    await socket.send_json(
        {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}
    )


async def _send(socket: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
    if not socket.closed:
        await socket.send_json({"event": event, "data": data})
