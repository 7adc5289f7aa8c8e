"""`telemetry.setup(app)`: the app's metrics, its tracers and the outermost middleware."""

from __future__ import annotations

from aiohttp import web
from opentelemetry import trace

from ..wiring import getter
from .http import request_telemetry_middleware
from .metrics import Metrics

METRICS = web.AppKey("metrics", Metrics)
#: the tracer of delivery spans (one per Pusher call); requests get theirs in the middleware
DELIVERY_TRACER = web.AppKey("delivery_tracer", trace.Tracer)
#: the tracer of group-commit spans (one per statement that stores many sends)
STORE_TRACER = web.AppKey("store_tracer", trace.Tracer)


def setup(app: web.Application, *, tracer_provider: trace.TracerProvider | None = None) -> None:
    """Metrics on a registry of this app's own; with a `tracer_provider`, a server span per
    request and a span per Pusher call. Runs first: its middleware must be the outermost, to
    time every request after the error middleware has turned exceptions into responses."""
    metrics = Metrics()
    app[METRICS] = metrics
    provider = tracer_provider or trace.NoOpTracerProvider()
    app[DELIVERY_TRACER] = provider.get_tracer("service.delivery")
    app[STORE_TRACER] = provider.get_tracer("service.store")
    requests_tracer = tracer_provider.get_tracer("service.http") if tracer_provider else None
    app.middlewares.append(request_telemetry_middleware(metrics, requests_tracer))


metrics_of = getter(METRICS, "telemetry.setup")
delivery_tracer_of = getter(DELIVERY_TRACER, "telemetry.setup")
store_tracer_of = getter(STORE_TRACER, "telemetry.setup")
