"""A circuit breaker in front of Pusher: after repeated failures stop calling for a cool-down,
then let one probe call through.

Hand-written on purpose: the breaker here gates two callers (the fast path and the relay)
rather than wrapping one function, must support a timed pause for Pusher's 403 "over quota",
and must report state changes to our metrics and logs; the PyPI breakers (pybreaker,
aiobreaker, purgatory) wrap calls and would need as much glue as this whole class.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum

log = logging.getLogger(__name__)


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._listeners: list[Callable[[State], None]] = []
        self._clock = clock
        self._state = State.CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._probe_in_flight = False

    def on_change(self, listener: Callable[[State], None]) -> None:
        """Call `listener` with every new state (metrics, the relay)."""
        self._listeners.append(listener)

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() >= self._open_until:
            self._set(State.HALF_OPEN)
        return self._state

    def seconds_until_retry(self) -> float:
        return max(0.0, self._open_until - self._clock()) if self._state is State.OPEN else 0.0

    def allow(self) -> bool:
        """May a call go to Pusher now? In half-open state only one probe at a time."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        if self._state is not State.CLOSED:
            self._set(State.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._probe_in_flight = False
        if self._state is State.HALF_OPEN or self._failures >= self._threshold:
            self.open_for(self._cooldown)

    def open_for(self, seconds: float) -> None:
        """Suspend calls for `seconds` (after repeated failures, or a 403 over-quota pause)."""
        self._open_until = max(self._open_until, self._clock() + seconds)
        self._probe_in_flight = False
        if self._state is not State.OPEN:
            self._set(State.OPEN)

    def _set(self, state: State) -> None:
        log.warning(
            "Pusher circuit %s",
            state.value,
            extra={"circuit": state.value, "failures": self._failures},
        )
        self._state = state
        for listener in self._listeners:
            listener(state)
