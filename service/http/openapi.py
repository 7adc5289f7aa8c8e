"""GET /openapi.json: the OpenAPI 3.1 description, generated from the pydantic models that
validate requests (and describe responses), so it cannot drift from what is served.

Assembled here rather than by a framework plugin: aiohttp has no maintained pydantic/OpenAPI
integration that works with plain function handlers without rewriting them as its own views.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from ..ids import MAX_ID
from . import schemas

_REF = "#/components/schemas/{model}"
_MODELS: list[type[BaseModel]] = [
    schemas.SendMessageRequest,
    schemas.PusherAuthRequest,
    schemas.DeliveryModeRequest,
    schemas.SendMessageResponse,
    schemas.HistoryResponse,
    schemas.SuccessResponse,
    schemas.ErrorResponse,
    schemas.NotReadyResponse,
    schemas.PusherAuthResponse,
    schemas.DeliveryModeResponse,
    schemas.HealthResponse,
    schemas.ReadyResponse,
]
_ERRORS = {
    "400": "malformed JSON",
    "401": "missing, invalid or expired token",
    "403": "not allowed",
    "404": "unknown, or not yours",
    "413": "body over 64 KiB, or an event over Pusher's 10,240-byte limit",
    "415": "body is not JSON",
    "422": "invalid field (details name each)",
    "429": "sending too fast (see Retry-After)",
    "503": "database unavailable, or the identity provider's keys cannot be fetched"
    " (auth_unavailable: the token may be fine; see Retry-After)",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _responses(ok: type[BaseModel], *errors: str) -> dict[str, Any]:
    answers: dict[str, Any] = {"200": {"description": "OK", **_json(ok)}}
    for status in errors:
        error = {"description": _ERRORS[status], **_json(schemas.ErrorResponse)}
        if status == "429":
            error["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
            }
        answers[status] = error
    return answers


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    properties = model.model_json_schema()["properties"]
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in properties.items()
    ]


def _id_parameter(name: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _paths() -> dict[str, Any]:
    user: list[dict[str, list[str]]] = [{"bearer": []}]
    admin: list[dict[str, list[str]]] = [{"adminToken": []}]
    send_errors = ("400", "401", "403", "413", "415", "422", "429", "503")
    auth_body = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _ref(schemas.PusherAuthRequest)},
            "application/json": {"schema": _ref(schemas.PusherAuthRequest)},
        },
    }
    return {
        "/api/messages/send": {
            "post": {
                "summary": (
                    "Store a message and answer at once; Pusher is triggered in the background"
                ),
                "operationId": "sendMessage",
                "security": user,
                "requestBody": {"required": True, **_json(schemas.SendMessageRequest)},
                "responses": _responses(schemas.SendMessageResponse, *send_errors),
            }
        },
        "/api/conversations/{conversationId}/messages": {
            "get": {
                "summary": "A page of a conversation's history, oldest first (participants only)",
                "operationId": "conversationMessages",
                "security": user,
                "parameters": [
                    _id_parameter("conversationId"),
                    *_query_parameters(schemas.HistoryQuery),
                ],
                "responses": _responses(schemas.HistoryResponse, "401", "404", "422", "503"),
            }
        },
        "/api/messages/{messageId}/receipt": {
            "post": {
                "summary": "The recipient's client received the message (the first receipt counts)",
                "operationId": "messageReceipt",
                "security": user,
                "parameters": [_id_parameter("messageId")],
                "responses": _responses(schemas.SuccessResponse, "401", "404", "503"),
            }
        },
        "/api/pusher/auth": {
            "post": {
                "summary": "Authorise a private-conversation channel for one of its participants",
                "operationId": "pusherAuth",
                "security": user,
                "requestBody": auth_body,
                "responses": _responses(
                    schemas.PusherAuthResponse, "400", "401", "403", "415", "422", "503"
                ),
            }
        },
        "/admin/delivery-mode": {
            "get": {
                "summary": "The delivery mode in force (404 when ADMIN_TOKEN is unset)",
                "operationId": "getDeliveryMode",
                "security": admin,
                "responses": _responses(schemas.DeliveryModeResponse, "401", "404"),
            },
            "put": {
                "summary": "Set the delivery mode for every replica (the rollback switch)",
                "operationId": "setDeliveryMode",
                "security": admin,
                "requestBody": {"required": True, **_json(schemas.DeliveryModeRequest)},
                "responses": _responses(
                    schemas.DeliveryModeResponse, "400", "401", "404", "415", "422", "503"
                ),
            },
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: 200 while the process runs",
                "operationId": "healthz",
                "responses": _responses(schemas.HealthResponse),
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database answers",
                "operationId": "readyz",
                "responses": {
                    **_responses(schemas.ReadyResponse),
                    "503": {"description": "a check failed", **_json(schemas.NotReadyResponse)},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (OpenMetrics when Accept asks for it)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Message send service",
            "version": __version__,
            "description": "Store chat messages, answer at once, deliver them to Pusher.",
        },
        "paths": _paths(),
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256)"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"},
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
