"""The delivery mode behind one small interface: `async` answers at once, `sync` waits.

`sync` is the design document's rollback plan. The default comes from DELIVERY_MODE; an
override (set at runtime for every replica) takes precedence while it is present.
"""

from __future__ import annotations

from typing import Literal

from ..settings import DeliveryMode

ModeSource = Literal["default", "override"]


class DeliveryModeState:
    """The mode in force for this process."""

    def __init__(self, default: DeliveryMode) -> None:
        self._default: DeliveryMode = default
        self._override: DeliveryMode | None = None

    @property
    def mode(self) -> DeliveryMode:
        return self._override or self._default

    @property
    def source(self) -> ModeSource:
        return "default" if self._override is None else "override"

    @property
    def waits_for_pusher(self) -> bool:
        return self.mode == "sync"

    def set_override(self, mode: DeliveryMode | None) -> None:
        self._override = mode
