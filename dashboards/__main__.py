"""`python -m dashboards [--check]`: write (or verify) the dashboard JSON files."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from . import prometheus_operator, rendered

OUTPUT_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if a committed file differs; write nothing"
    )
    check = parser.parse_args(argv).check
    stale = [name for name, text in sorted(rendered().items()) if not _emit(name, text, check)]
    stale += prometheus_operator.regenerate(check)  # deploy/kubernetes/monitoring/
    if stale:
        print(f"out of date: {', '.join(stale)}; run `python -m dashboards`", file=sys.stderr)
    return 1 if stale else 0


def _emit(name: str, text: str, check: bool) -> bool:
    """Write (or compare) one file and print a line about it; False when it is stale."""
    data = text.encode("utf-8")
    path = OUTPUT_DIR / name
    if check:
        up_to_date = path.exists() and path.read_bytes() == data
    else:
        path.write_bytes(data)
        up_to_date = True
    digest = hashlib.sha256(data).hexdigest()[:16]
    print(f"{OUTPUT_DIR.name}/{name}  {len(data)} bytes  sha256:{digest}")
    return up_to_date


if __name__ == "__main__":
    sys.exit(main())
