"""Reading request bodies and queries into validated models, with the contract's errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ..errors import BadRequest, MalformedJSON, UnsupportedMediaType, ValidationFailed

M = TypeVar("M", bound=BaseModel)


async def json_body(request: web.Request, model: type[M]) -> M:
    """415 unless JSON, 413 over the body cap (aiohttp's client_max_size), 400 unless it
    parses, 422 unless it validates."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType()
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedJSON() from None
    return validated(model, data)


async def form_or_json_body(request: web.Request, model: type[M]) -> M:
    """pusher-js posts its auth request as a urlencoded form; other clients may send JSON."""
    if request.content_type == "application/json":
        return await json_body(request, model)
    if request.content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("The request body must be a urlencoded form or JSON.")
    try:
        form = parse_qs((await request.read()).decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise BadRequest("The form is not valid UTF-8.") from None
    return validated(model, {key: values[-1] for key, values in form.items()})


def validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_summary(exc), details=_field_errors(exc)) from None


def query_params(request: web.Request, model: type[M]) -> M:
    return validated(model, _single_values(request.query))


def _single_values(query: Mapping[str, str]) -> dict[str, str]:
    return {key: query[key] for key in query}


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def _summary(exc: ValidationError) -> str:
    first = _field_errors(exc)[0]
    return f"{first['field']}: {first['message']}"
