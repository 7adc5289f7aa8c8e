"""Typed application keys: every shared resource of the app, one key each."""

from __future__ import annotations

from aiohttp import web
from opentelemetry import trace

from .delivery.dispatch import Dispatcher
from .delivery.mode_watch import DeliveryModeWatcher
from .delivery.pusher_client import PusherClient
from .delivery.relay import Relay
from .http.auth import TokenVerifier
from .http.ratelimit import SendRateLimiter
from .settings import Settings
from .store.messages import MessageStore
from .store.outbox import Outbox
from .telemetry.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
TOKENS = web.AppKey("tokens", TokenVerifier)
SEND_LIMITER = web.AppKey("send_limiter", SendRateLimiter)
STORE = web.AppKey("store", MessageStore)
OUTBOX = web.AppKey("outbox", Outbox)
PUSHER = web.AppKey("pusher", PusherClient)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
RELAY = web.AppKey("relay", Relay)
TRACER = web.AppKey("tracer", trace.Tracer)
MODE_WATCHER = web.AppKey("mode_watcher", DeliveryModeWatcher)
