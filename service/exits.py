"""How a command line of this service ends: the errors an operator can fix become one clear line
on stderr and an exit status, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .environment import ConfigError
from .errors import DatabaseUnavailable


def exit_status(command: Callable[[], int]) -> int:
    try:
        return command()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:
        print(f"database unavailable: {exc.__cause__ or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, OSError) as exc:  # e.g. no PostgreSQL binaries, a port in use
        print(f"error: {exc}", file=sys.stderr)
        return 1
