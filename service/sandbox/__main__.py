"""`python -m service.sandbox`: run the local Pusher-compatible server on its own."""

from __future__ import annotations

import argparse
import logging
import os

from aiohttp import web

from ..event_loop import event_loop
from . import SandboxConfig, create_sandbox_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m service.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6001)
    parser.add_argument("--app-id", default="1")
    parser.add_argument("--key", default="sandbox-key")
    parser.add_argument("--secret", default="sandbox-secret")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    config = SandboxConfig(app_id=args.app_id, key=args.key, secret=args.secret)
    # uvloop like the service: in benchmarks the sandbox shares the machine with the service,
    # and every cycle it spends stands for work that real Pusher does on its own servers
    web.run_app(
        create_sandbox_app(config),
        host=args.host,
        port=args.port,
        backlog=2048,
        access_log=None,
        loop=event_loop(os.environ),
    )


if __name__ == "__main__":
    main()
