"""The one place where exceptions become the contract's JSON errors."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ..errors import ServiceError
from ..telemetry.http import route_of
from ..telemetry.sentry import capture_unexpected

log = logging.getLogger(__name__)

# aiohttp's own HTTP exceptions (unknown route, wrong method, body too large) mapped to codes.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, *, details: Any = None, headers: Any = None
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return web.json_response({"success": False, "error": error}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceError as exc:
        return error_response(
            exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers or None
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason, headers=headers)
    except Exception as exc:
        log.exception("unhandled error", extra={"route": route_of(request)})
        capture_unexpected(exc, route=route_of(request))
        return error_response(500, "internal_error", "Internal error.")
