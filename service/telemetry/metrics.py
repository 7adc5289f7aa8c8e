"""Every Prometheus metric of the contract, on a registry that belongs to one app instance.

Each label combination the contract lists is created at start-up (at 0), so dashboards and
alerts see the series before the first failure; the outcomes of Pusher calls come from the
failure table that decides them (`delivery/failures.py`), through `expect_pusher_outcomes`.
Buckets include the alert thresholds (0.05, 0.1, 0.2, 0.3 s).

A new metric: an attribute here, created in `__init__` (and its label values in
`_initialise_series`), named as in the contract or in README's own list.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .. import __version__
from ..settings import DELIVERY_MODES

#: request and call latencies; 0.05/0.1/0.2/0.3 are alert thresholds
#: rows per insert statement: 1 is a lone send, the top is SEND_BATCH_MAX_ROWS' default
BATCH_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 100)

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: delivery can take as long as retries do
DELIVERY_BUCKETS = (*LATENCY_BUCKETS, 30.0, 60.0, 120.0, 300.0)

DELIVERY_STAGES = ("pusher_ack", "client_receipt")
JOB_STATES = ("active", "pending")


class Metrics:
    """The service's metrics; `registry` is what /metrics exposes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_request_duration = Histogram(
            "http_server_request_duration_seconds",
            "HTTP requests served, by route pattern",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.messages_saved = Counter("messages_saved_total", "Messages stored", registry=r)
        self.db_insert_duration = Histogram(
            "messages_db_insert_duration_seconds",
            "The insert of one send, from the moment it waits for the database to its commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_insert_batch_rows = Histogram(
            "messages_db_insert_batch_rows",
            "Sends stored by one insert statement (group commit)",
            buckets=BATCH_ROW_BUCKETS,
            registry=r,
        )
        self.pusher_requests = Counter(
            "messages_pusher_requests_total",
            "HTTP calls to Pusher (a batch call counts once)",
            ["outcome"],
            registry=r,
        )
        self.pusher_request_duration = Histogram(
            "messages_pusher_request_duration_seconds",
            "One HTTP call to Pusher",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.pusher_retries = Counter(
            "messages_pusher_retries_total", "Calls repeated after a failure", registry=r
        )
        self.delivery_latency = Histogram(
            "messages_delivery_latency_seconds",
            "From the message's commit to Pusher's acceptance / the recipient's receipt",
            ["stage"],
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.background_jobs = Gauge(
            "messages_background_jobs", "Fire-and-forget work in flight", ["state"], registry=r
        )
        self.undelivered = Gauge(
            "messages_undelivered", "Stored messages not yet accepted by Pusher", registry=r
        )
        self.oldest_undelivered_age = Gauge(
            "messages_oldest_undelivered_age_seconds",
            "Age of the oldest undelivered message (0 when none)",
            registry=r,
        )
        self.dead_lettered = Counter(
            "messages_dead_lettered_total",
            "Events given up on (permanent rejection or attempts exhausted)",
            registry=r,
        )
        self.delivery_claims_lapsed = Counter(
            "messages_delivery_claims_lapsed_total",
            "Events dropped before their Pusher call because their claim may have lapsed"
            " (the replica was paused or cut off from the database past its lease)",
            registry=r,
        )
        self.circuit_open = Gauge(
            "messages_pusher_circuit_open", "1 while calls to Pusher are suspended", registry=r
        )
        self.pusher_up = Gauge(
            "messages_pusher_up",
            "1 when the last availability probe of Pusher succeeded",
            registry=r,
        )
        self.delivery_mode = Gauge(
            "messages_delivery_mode", "1 for the delivery mode in force", ["mode"], registry=r
        )
        self.rate_limited = Counter(
            "messages_rate_limited_total", "Sends refused by the per-user rate limit", registry=r
        )
        self.build_info = Gauge("messages_build_info", "Always 1", ["version"], registry=r)
        self._initialise_series()

    def _initialise_series(self) -> None:
        for stage in DELIVERY_STAGES:
            self.delivery_latency.labels(stage)
        for state in JOB_STATES:
            self.background_jobs.labels(state).set(0)
        for mode in DELIVERY_MODES:
            self.delivery_mode.labels(mode).set(0)
        self.build_info.labels(__version__).set(1)

    def jwks(self) -> JwksMetrics:
        """The identity provider's metrics, registered only when AUTH_JWKS_URL is set."""
        return JwksMetrics(self.registry)

    def expect_pusher_outcomes(self, outcomes: tuple[str, ...]) -> None:
        """Create each outcome's series of `messages_pusher_requests_total` at 0."""
        for outcome in outcomes:
            self.pusher_requests.labels(outcome)

    def show_delivery_mode(self, mode: str) -> None:
        for candidate in DELIVERY_MODES:
            self.delivery_mode.labels(candidate).set(1 if candidate == mode else 0)


JWKS_OUTCOMES = ("success", "error")


class JwksMetrics:
    """Fetches of the provider's JWKS document, and the keys they gave."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refreshes = Counter(
            "messages_auth_jwks_refresh_total",
            "Fetches of the identity provider's JWKS document",
            ["outcome"],
            registry=registry,
        )
        self.keys_age = Gauge(
            "messages_auth_jwks_keys_age_seconds",
            "Seconds since the signing keys in use were fetched (since start-up before the"
            " first success)",
            registry=registry,
        )
        self.keys = Gauge(
            "messages_auth_jwks_keys",
            "Signing keys in use from the JWKS document",
            registry=registry,
        )
        for outcome in JWKS_OUTCOMES:
            self.refreshes.labels(outcome)
