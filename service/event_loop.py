"""The event loop the service's processes run on (the service, the sandbox, the benchmark's
bare handler alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


def event_loop(env: Mapping[str, str]) -> asyncio.AbstractEventLoop:
    """uvloop when installed (its sockets and scheduling are faster; BENCHMARKS.md says by how
    much); EVENT_LOOP=asyncio picks the standard loop, to compare."""
    if env.get("EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
