"""GET /openapi.json describes what is served: a valid document, every route, real responses."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from service.http.openapi import openapi_document

from ..helpers import AppClient, auth

ADMIN = {"Authorization": "Bearer test-admin-token"}


def conforms(document: dict[str, Any], path: str, method: str, status: int, body: object) -> None:
    """The body matches the schema the document declares for this status."""
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered undeclared {status}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    errors = list(validator.iter_errors(body))
    assert not errors, f"{method.upper()} {path} {status}: {errors[0].message}"


async def test_served_document_is_valid_openapi(client: AppClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate_spec(document)
    assert document == openapi_document()


async def test_every_route_is_described_and_nothing_else(client: AppClient) -> None:
    document = openapi_document()
    served = set()
    for route in client.app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        served.add((path, route.method.lower()))
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == described


async def test_real_responses_match_the_document(client: AppClient, db: asyncpg.Connection) -> None:
    document = openapi_document()
    send = "/api/messages/send"
    checks = []

    response = await client.post(
        send, json={"recipientId": 2, "content": "hi", "clientMessageId": "c"}, headers=auth(1)
    )
    message = (await response.json())["message"]
    checks.append((send, "post", response.status, await response.json()))
    for body, headers in [({"recipientId": 2}, auth(1)), ({"recipientId": 2, "content": "x"}, {})]:
        response = await client.post(send, json=body, headers=headers)
        checks.append((send, "post", response.status, await response.json()))
    response = await client.post(
        send, data=b"{", headers={**auth(1), "Content-Type": "application/json"}
    )
    checks.append((send, "post", response.status, await response.json()))

    history = "/api/conversations/{conversationId}/messages"
    for user in (1, 3):
        response = await client.get(
            f"/api/conversations/{message['conversationId']}/messages", headers=auth(user)
        )
        checks.append((history, "get", response.status, await response.json()))
    receipt = "/api/messages/{messageId}/receipt"
    for user in (2, 1):
        response = await client.post(f"/api/messages/{message['id']}/receipt", headers=auth(user))
        checks.append((receipt, "post", response.status, await response.json()))
    channel = f"private-conversation-{message['conversationId']}"
    for user in (2, 3):
        response = await client.post(
            "/api/pusher/auth",
            data={"socket_id": "1.2", "channel_name": channel},
            headers=auth(user),
        )
        checks.append(("/api/pusher/auth", "post", response.status, await response.json()))
    for headers in (ADMIN, {}):
        response = await client.get("/admin/delivery-mode", headers=headers)
        checks.append(("/admin/delivery-mode", "get", response.status, await response.json()))
    response = await client.put("/admin/delivery-mode", json={"mode": "nope"}, headers=ADMIN)
    checks.append(("/admin/delivery-mode", "put", response.status, await response.json()))
    for path in ("/healthz", "/readyz"):
        response = await client.get(path)
        checks.append((path, "get", response.status, await response.json()))

    statuses = sorted({status for _, _, status, _ in checks})
    assert statuses == [200, 400, 401, 403, 404, 422]  # the run exercised each kind
    for path, method, status, body in checks:
        conforms(document, path, method, status, body)


@pytest.mark.parametrize("content_type", ["multipart/form-data", "text/plain", "application/xml"])
async def test_pusher_auth_refuses_other_bodies_with_415(
    client: AppClient, db: asyncpg.Connection, content_type: str
) -> None:
    response = await client.post(
        "/api/pusher/auth",
        data=b"socket_id=1.2&channel_name=x",
        headers={**auth(1), "Content-Type": content_type},
    )
    assert response.status == 415
