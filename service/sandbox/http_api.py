"""Pusher's HTTP API: trigger, batch trigger, channel list; signatures and limits enforced."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from .protocol import (
    MAX_BATCH_EVENTS,
    MAX_CHANNELS,
    MAX_DATA_BYTES,
    MAX_NAME_CHARS,
    SOCKET_ID,
    is_channel_name,
)
from .signing import SignatureError, verify_request
from .state import SANDBOX, AcceptedEvent, ApiCall, SandboxState, now


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def add_routes(app: web.Application) -> None:
    app.router.add_post("/apps/{app_id}/events", trigger)
    app.router.add_post("/apps/{app_id}/batch_events", trigger_batch)
    app.router.add_get("/apps/{app_id}/channels", channels)


async def trigger(request: web.Request) -> web.StreamResponse:
    return await _api_call(request, _parse_trigger)


async def trigger_batch(request: web.Request) -> web.StreamResponse:
    return await _api_call(request, _parse_batch)


async def channels(request: web.Request) -> web.StreamResponse:
    async def occupied(state: SandboxState, _: bytes) -> list[AcceptedEvent]:
        return []

    response = await _api_call(request, occupied)
    if response.status != 200:
        return response
    state = request.app[SANDBOX]
    prefix = request.query.get("filter_by_prefix", "")
    names = [name for name, sockets in state.subscriptions.items() if sockets]
    return web.json_response({"channels": {n: {} for n in names if n.startswith(prefix)}})


async def _api_call(request: web.Request, parse: Any) -> web.StreamResponse:
    state = request.app[SANDBOX]
    if request.transport is not None:
        state.connections.add(id(request.transport))
    body = await request.read()
    try:
        _authenticate(request, state, body)
        events = await parse(state, body)
    except ApiError as exc:
        state.calls.append(ApiCall(request.path, exc.status, 0))
        return web.Response(status=exc.status, text=exc.message)
    carries_events = not request.path.endswith("/channels")
    fault = state.faults.take(counted=carries_events)
    if fault is not None:
        if fault.kind == "drop":
            state.calls.append(ApiCall(request.path, 0, 0))
            assert request.transport is not None
            request.transport.abort()  # the client sees the connection reset, no answer
            return web.Response(status=499)
        if fault.kind == "status":
            state.calls.append(ApiCall(request.path, fault.status, 0))
            return web.Response(status=fault.status, text=f"injected fault: HTTP {fault.status}")
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        if fault.kind == "hold":
            await state.faults.wait_released(counted=carries_events)
    state.calls.append(ApiCall(request.path, 200, len(events)))
    await state.accept(events)
    if request.path.endswith("/batch_events"):
        return web.json_response({"batch": [{} for _ in events]})
    return web.json_response({})


def _authenticate(request: web.Request, state: SandboxState, body: bytes) -> None:
    if request.match_info["app_id"] != state.config.app_id:
        raise ApiError(404, "Unknown app")
    try:
        verify_request(
            method=request.method,
            path=request.path,
            query=request.query,
            body=body,
            key=state.config.key,
            secret=state.config.secret,
        )
    except SignatureError as exc:
        raise ApiError(401, str(exc)) from None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return value


async def _parse_trigger(state: SandboxState, body: bytes) -> list[AcceptedEvent]:
    params = _json_object(body)
    channel_list = params.get("channels", [params["channel"]] if "channel" in params else None)
    if not isinstance(channel_list, list) or not 1 <= len(channel_list) <= MAX_CHANNELS:
        raise ApiError(400, f"Must provide between 1 and {MAX_CHANNELS} channels")
    return [
        _event(channel, params.get("name"), params.get("data"), params.get("socket_id"))
        for channel in channel_list
    ]


async def _parse_batch(state: SandboxState, body: bytes) -> list[AcceptedEvent]:
    batch = _json_object(body).get("batch")
    if not isinstance(batch, list) or not batch:
        raise ApiError(400, "batch must be a non-empty list of events")
    if len(batch) > MAX_BATCH_EVENTS:
        raise ApiError(400, f"Batch too large ({len(batch)} > {MAX_BATCH_EVENTS})")
    events = []
    for item in batch:
        if not isinstance(item, dict):
            raise ApiError(400, "Each batch item must be an object")
        events.append(
            _event(item.get("channel"), item.get("name"), item.get("data"), item.get("socket_id"))
        )
    return events


def _event(channel: Any, name: Any, data: Any, socket_id: Any) -> AcceptedEvent:
    if not is_channel_name(channel):
        raise ApiError(400, f"Invalid channel name: {str(channel)[:50]!r}")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise ApiError(400, f"Event name must be 1 to {MAX_NAME_CHARS} characters")
    if not isinstance(data, str):
        raise ApiError(400, "Event data must be a string")
    if len(data.encode("utf-8")) > MAX_DATA_BYTES:
        raise ApiError(
            413,
            f"The data content of this event exceeds the allowed maximum ({MAX_DATA_BYTES} bytes)",
        )
    if socket_id is not None and (not isinstance(socket_id, str) or not SOCKET_ID.match(socket_id)):
        raise ApiError(400, "Invalid socket_id")
    return AcceptedEvent(channel, name, data, socket_id, now())
