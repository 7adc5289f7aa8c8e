"""Faults injected into the sandbox's HTTP API: slow, failing, dropping, or held calls."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["delay", "status", "drop", "hold"]


@dataclass
class Fault:
    """One fault for the next `calls` event-carrying API calls and/or `duration` seconds (both
    None: forever). It applies to every API call, the channel listing included (a Pusher
    outage is one), but only calls that trigger events count against `calls`.

    - delay: wait `seconds`, then answer normally (a slow Pusher);
    - status: answer `status` without accepting the events (a failing Pusher);
    - drop: close the connection without an answer;
    - hold: wait until released (tests assert orderings with it), then answer normally.
    """

    kind: FaultKind
    seconds: float = 0.0
    status: int = 500
    calls: int | None = None
    duration: float | None = None
    started: float = field(default_factory=time.monotonic)

    def expired(self) -> bool:
        if self.calls is not None and self.calls <= 0:
            return True
        return self.duration is not None and time.monotonic() - self.started > self.duration


class FaultInjector:
    """Holds the active fault and the gate that held calls wait on."""

    def __init__(self) -> None:
        self._fault: Fault | None = None
        self._released = asyncio.Event()
        self.held = 0  # event-carrying calls waiting at the gate right now

    def set(self, fault: Fault) -> None:
        self._fault = fault
        if fault.kind == "hold":
            self._released.clear()

    def clear(self) -> None:
        self._fault = None
        self._released.set()

    def release(self) -> None:
        """Let held calls through and stop holding new ones; a fault set after the hold (to
        apply to the calls that follow) stays in force."""
        if self._fault is not None and self._fault.kind == "hold":
            self._fault = None
        self._released.set()

    def take(self, *, counted: bool = True) -> Fault | None:
        """The fault that applies to this call, counting it against `calls` if `counted`."""
        fault = self._fault
        if fault is None:
            return None
        if fault.expired():
            self._fault = None
            return None
        if fault.calls is not None and counted:
            fault.calls -= 1
        return fault

    async def wait_released(self, *, counted: bool = True) -> None:
        self.held += counted
        try:
            await self._released.wait()
        finally:
            self.held -= counted
