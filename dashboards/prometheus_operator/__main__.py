"""`python -m dashboards.prometheus_operator [--check]`: write (or verify)
deploy/kubernetes/monitoring/."""

from __future__ import annotations

import argparse
import sys

from .files import regenerate
from .resources import COMMAND


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if a committed file differs; write nothing"
    )
    stale = regenerate(parser.parse_args(argv).check)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `{COMMAND}`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
