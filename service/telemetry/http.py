"""The HTTP request metric, labelled by route pattern (never the raw path)."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .metrics import Metrics
from .tracing import exemplar


def route_of(request: web.Request) -> str:
    """The matched route's pattern, e.g. /api/conversations/{conversationId}/messages."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(metrics: Metrics) -> Middleware:
    histogram = metrics.http_request_duration

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
            histogram.labels(request.method, route_of(request), str(status)).observe(
                time.perf_counter() - started, exemplar()
            )

    return record_request
