"""PromQL building blocks: every selector carries the service's job, every window a Grafana macro.

Only two macros appear in expressions: `$__rate_interval` for rates and increases on graphs, and
`$__range` for SLO ratios over the dashboard's time range.
"""

from __future__ import annotations

from collections.abc import Sequence

JOB = "message-send-service"
SEND_ROUTE = "/api/messages/send"
RATE_WINDOW = "$__rate_interval"
SLO_WINDOW = "$__range"
QUANTILES = (0.5, 0.95, 0.99)

SEND = f'route="{SEND_ROUTE}"'
SERVER_ERROR = 'status=~"5.."'
REQUESTS = "http_server_request_duration_seconds"


def selector(*matchers: str) -> str:
    """`{job="message-send-service", <matchers>}`."""
    return "{" + ", ".join((f'job="{JOB}"', *matchers)) + "}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({metric}{selector(*matchers)}[{RATE_WINDOW}])"


def increase(metric: str, *matchers: str, window: str = RATE_WINDOW) -> str:
    return f"increase({metric}{selector(*matchers)}[{window}])"


def sum_by(labels: Sequence[str], expr: str) -> str:
    """`sum by (labels) (expr)`, or `sum(expr)` without labels."""
    return _aggregate("sum", labels, expr)


def max_by(labels: Sequence[str], expr: str) -> str:
    """`max by (labels) (expr)`: for gauges every replica reports alike, or 0/1 states."""
    return _aggregate("max", labels, expr)


def _aggregate(operator: str, labels: Sequence[str], expr: str) -> str:
    if not labels:
        return f"{operator}({expr})"
    return f"{operator} by ({', '.join(labels)}) ({expr})"


def or_zero(expr: str) -> str:
    """`(expr or vector(0))`: a series label that only appears on failure reads 0, not empty."""
    return f"({expr} or vector(0))"


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator} / {denominator}"


def quantile(q: float, histogram: str, *matchers: str, by: Sequence[str] = ()) -> str:
    """`histogram_quantile(q, sum by (le, …) (rate(<histogram>_bucket{…}[$__rate_interval])))`."""
    buckets = sum_by(("le", *by), rate(f"{histogram}_bucket", *matchers))
    return f"histogram_quantile({q}, {buckets})"


def bucket(seconds: float) -> str:
    """Matcher for the bucket `le=<seconds>`.

    prometheus-client writes `le="1.0"`; Prometheus 3 normalises that to `le="1"` on ingestion,
    so a whole number matches either spelling.
    """
    written = repr(float(seconds))
    normalised = f"{seconds:g}"
    if written == normalised:
        return f'le="{written}"'
    escaped = written.replace(".", "\\\\.")
    return f'le=~"{normalised}|{escaped}"'


def share_within(histogram: str, seconds: float, *matchers: str, by: Sequence[str] = ()) -> str:
    """Share of observations at or under `seconds` over the dashboard's time range."""
    within = increase(f"{histogram}_bucket", *matchers, bucket(seconds), window=SLO_WINDOW)
    total = increase(f"{histogram}_count", *matchers, window=SLO_WINDOW)
    return ratio(sum_by(by, within), sum_by(by, total))
