"""The URL map: a new endpoint is a line here, its handler in the module of its concern, its
models in schemas.py and its description in openapi.py."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from ..telemetry import metrics_of
from . import admin, health, messages, openapi, pusher_auth


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/messages/send", messages.send_message)
    app.router.add_get(
        r"/api/conversations/{conversationId:\d+}/messages", messages.conversation_messages
    )
    app.router.add_post(r"/api/messages/{messageId:\d+}/receipt", messages.message_receipt)
    app.router.add_post("/api/pusher/auth", pusher_auth.pusher_auth)
    app.router.add_get("/admin/delivery-mode", admin.get_delivery_mode)
    app.router.add_put("/admin/delivery-mode", admin.put_delivery_mode)
    app.router.add_get("/openapi.json", openapi.openapi_json)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    # prometheus-client's own handler: text format, or OpenMetrics when Accept asks for it
    app.router.add_get("/metrics", make_aiohttp_handler(metrics_of(app).registry))
