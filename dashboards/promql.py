"""PromQL building blocks: every selector carries the service's job and the dashboard's
deployment variables, every window a Grafana macro.

One Grafana and one Prometheus serve several deployments (namespaces, possibly clusters), so every
selector also names `cluster=~"$cluster", namespace=~"$namespace"` and, unless it feeds a
deployment-wide SLO figure, `instance=~"$instance"`. Series scraped without Kubernetes
(docker-compose) carry neither label: the empty `namespace` variable and the `.*` "All" of the
others match a missing label too.

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
#: one sample per request answered
REQUEST_COUNT = f"{REQUESTS}_count"
PUSHER_CALL_DURATION = "messages_pusher_request_duration_seconds"

#: the template variables (dashboards/layout.py) and the labels they select on
CLUSTER = "cluster"
NAMESPACE = "namespace"
INSTANCE = "instance"
#: one deployment of the service: what every selector names
DEPLOYMENT = (f'job="{JOB}"', f'{CLUSTER}=~"${CLUSTER}"', f'{NAMESPACE}=~"${NAMESPACE}"')
#: the replicas picked in the `instance` variable ("All" by default)
REPLICAS = f'{INSTANCE}=~"${INSTANCE}"'


def selector(*matchers: str, replicas: bool = True) -> str:
    """`{job="message-send-service", cluster=~"$cluster", namespace=~"$namespace",
    instance=~"$instance", <matchers>}`.

    `replicas=False` leaves out the instance filter: for figures about the whole deployment
    (SLOs), which a replica picked to look at must not change.
    """
    scope = (*DEPLOYMENT, REPLICAS) if replicas else DEPLOYMENT
    return "{" + ", ".join((*scope, *matchers)) + "}"


def series(metric: str, *matchers: str, replicas: bool = True) -> str:
    """`metric{<the deployment's and the replicas' matchers>, <matchers>}`."""
    return metric + selector(*matchers, replicas=replicas)


def rate(metric: str, *matchers: str, replicas: bool = True) -> str:
    return f"rate({series(metric, *matchers, replicas=replicas)}[{RATE_WINDOW}])"


def increase(metric: str, *matchers: str, window: str = RATE_WINDOW, replicas: bool = True) -> str:
    return f"increase({series(metric, *matchers, replicas=replicas)}[{window}])"


def sum_rate(metric: str, *matchers: str, by: Sequence[str] = (), replicas: bool = True) -> str:
    """`sum by (by) (rate(…))`: a counter's rate across replicas."""
    return sum_by(by, rate(metric, *matchers, replicas=replicas))


def sum_increase(
    metric: str,
    *matchers: str,
    by: Sequence[str] = (),
    window: str = RATE_WINDOW,
    replicas: bool = True,
) -> str:
    """`sum by (by) (increase(…))`: a counter's increase across replicas."""
    return sum_by(by, increase(metric, *matchers, window=window, replicas=replicas))


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


def rate_share(counter: str, *matchers: str, part: str, zero_if_absent: bool = False) -> str:
    """Share of a counter's rate whose series also match `part`, for graphs.

    `zero_if_absent`: the `part` series only appear once counted (e.g. a 5xx status), so the
    share reads 0 rather than empty until then.
    """
    return _share(sum_rate(counter, *matchers, part), sum_rate(counter, *matchers), zero_if_absent)


def range_share(counter: str, *matchers: str, part: str, zero_if_absent: bool = False) -> str:
    """Like `rate_share`, over the dashboard's time range: for SLO figures, so every replica."""
    part_total = sum_increase(counter, *matchers, part, window=SLO_WINDOW, replicas=False)
    whole = sum_increase(counter, *matchers, window=SLO_WINDOW, replicas=False)
    return _share(part_total, whole, zero_if_absent)


def _share(part: str, whole: str, zero_if_absent: bool) -> str:
    return ratio(or_zero(part) if zero_if_absent else part, whole)


def quantile(q: float, histogram: str, *matchers: str, by: Sequence[str] = ()) -> str:
    """`histogram_quantile(q, sum by (le, …) (rate(<histogram>_bucket{…}[$__rate_interval])))`."""
    buckets = sum_rate(f"{histogram}_bucket", *matchers, by=("le", *by))
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
    """Share of observations at or under `seconds` over the dashboard's time range, every
    replica: an SLO figure."""
    bounded = (*matchers, bucket(seconds))
    within = increase(f"{histogram}_bucket", *bounded, window=SLO_WINDOW, replicas=False)
    total = increase(f"{histogram}_count", *matchers, window=SLO_WINDOW, replicas=False)
    return ratio(sum_by(by, within), sum_by(by, total))
