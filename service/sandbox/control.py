"""HTTP control of the sandbox for tests and benchmarks in other processes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .faults import Fault
from .state import SANDBOX

_FAULT_FIELDS = ("kind", "seconds", "status", "calls", "duration")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/_sandbox/faults", set_fault)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_post("/_sandbox/connections/drop", drop_connections)
    app.router.add_get("/_sandbox/events", list_events)
    app.router.add_delete("/_sandbox/events", reset)


async def set_fault(request: web.Request) -> web.Response:
    """Body: {"kind": "delay"|"status"|"drop"|"hold", and optionally "seconds", "status",
    "calls", "duration"} (see `Fault`)."""
    spec: dict[str, Any] = await request.json()
    if spec.get("kind") not in ("delay", "status", "drop", "hold"):
        return web.json_response({"error": "kind must be delay, status, drop or hold"}, status=400)
    request.app[SANDBOX].faults.set(Fault(**{k: spec[k] for k in _FAULT_FIELDS if k in spec}))
    return web.json_response({"ok": True})


async def clear_faults(request: web.Request) -> web.Response:
    """Clear the fault and release held calls."""
    request.app[SANDBOX].faults.clear()
    return web.json_response({"ok": True})


async def drop_connections(request: web.Request) -> web.Response:
    """Body (optional): {"refuseSeconds": float}: close every client WebSocket and refuse new
    ones for that long (clients see a network cut, then reconnect)."""
    spec: dict[str, Any] = await request.json() if request.can_read_body else {}
    refuse = spec.get("refuseSeconds", 0.0)
    if not isinstance(refuse, int | float) or isinstance(refuse, bool) or refuse < 0:
        return web.json_response({"error": "refuseSeconds must be a number >= 0"}, status=400)
    dropped = await request.app[SANDBOX].drop_connections(float(refuse))
    return web.json_response({"ok": True, "dropped": dropped})


async def list_events(request: web.Request) -> web.Response:
    state = request.app[SANDBOX]
    return web.json_response(
        {
            "events": [event.to_json() for event in state.events],
            "calls": [
                {"path": c.path, "status": c.status, "events": c.events} for c in state.calls
            ],
            "connections": len(state.connections),
            "droppedConnections": state.dropped_connections,
            "held": state.faults.held,
        }
    )


async def reset(request: web.Request) -> web.Response:
    request.app[SANDBOX].reset()
    return web.json_response({"ok": True})
