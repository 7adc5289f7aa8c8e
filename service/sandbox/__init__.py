"""A local Pusher-compatible server for tests, benchmarks and `python -m service dev`.

It speaks the Pusher HTTP API (signed exactly as Pusher checks it, with Pusher's limits) and
WebSocket protocol 7 as pusher-js uses it, and takes injected faults (delay, error status,
dropped connection, hold-until-released) so tests can make Pusher slow or broken on demand.
"""

from .app import create_sandbox_app
from .faults import Fault
from .state import SANDBOX, SandboxConfig, SandboxState

__all__ = ["SANDBOX", "Fault", "SandboxConfig", "SandboxState", "create_sandbox_app"]
