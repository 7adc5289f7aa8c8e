"""The HTTP request metric, labelled by route pattern (never the raw path)."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Histogram

from .metrics import Metrics
from .tracing import exemplar


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def route_of(request: web.Request) -> str:
    """The matched route's pattern, e.g. /api/conversations/{conversationId}/messages."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(metrics: Metrics) -> Middleware:
    histogram = metrics.http_request_duration
    # labels() takes a lock and builds a tuple key on every call: keep each child once.
    # Bounded: routes are patterns (a 404 is "unmatched"), statuses are few, and methods
    # outside HTTP's own set are "_OTHER" (OpenTelemetry's convention; the parser also
    # admits WebDAV, RTSP and other methods).
    children: dict[tuple[str, str, int], Histogram] = {}

    def child(method: str, route: str, status: int) -> Histogram:
        found = children.get((method, route, status))
        if found is None:
            found = children[(method, route, status)] = histogram.labels(method, route, str(status))
        return found

    @web.middleware
    async def record_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # only what the error middleware lets through
            status = exc.status
            raise
        finally:
            method = request.method if request.method in _METHODS else "_OTHER"
            child(method, route_of(request), status).observe(
                time.perf_counter() - started, exemplar()
            )

    return record_request
