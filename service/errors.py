"""One exception tree; the error middleware turns each into the contract's JSON error.

The docstring of each class is its default human message.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class ServiceError(Exception):
    """Internal error."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details
        self.headers: dict[str, str] = {}
        super().__init__(self.message)


class MalformedJSON(ServiceError):
    """The request body is not valid JSON."""

    status = 400
    code = "malformed_json"


class BadRequest(ServiceError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class Unauthorized(ServiceError):
    """A valid bearer token is required."""

    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    """You are not allowed to do this."""

    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    """Not found."""

    status = 404
    code = "not_found"


class PayloadTooLarge(ServiceError):
    """The request or the event it becomes is too large."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    """The request body must be JSON (Content-Type: application/json)."""

    status = 415
    code = "unsupported_media_type"


class ValidationFailed(ServiceError):
    """A field is invalid."""

    status = 422
    code = "validation_failed"


class RateLimited(ServiceError):
    """Too many messages; slow down."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_seconds: float) -> None:
        seconds = _whole_seconds(retry_after_seconds)
        super().__init__(f"Too many messages; retry in {seconds} s.")
        self.headers["Retry-After"] = str(seconds)


class DatabaseUnavailable(ServiceError):
    """The database is unavailable; try again shortly."""

    status = 503
    code = "database_unavailable"


class AuthUnavailable(ServiceError):
    """The identity provider's keys cannot be fetched right now; try again shortly."""

    status = 503
    code = "auth_unavailable"

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__()
        self.headers["Retry-After"] = str(_whole_seconds(retry_after_seconds))


def _whole_seconds(seconds: float) -> int:
    """Retry-After takes whole seconds; never 0, which would invite an immediate retry."""
    return max(1, math.ceil(seconds))
