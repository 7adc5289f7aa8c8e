"""Typed application keys: every shared resource of the app, one key each."""

from __future__ import annotations

from aiohttp import web

from .delivery.dispatch import Dispatcher
from .delivery.pusher_client import PusherClient
from .http.auth import TokenVerifier
from .settings import Settings
from .store.messages import MessageStore

SETTINGS = web.AppKey("settings", Settings)
TOKENS = web.AppKey("tokens", TokenVerifier)
STORE = web.AppKey("store", MessageStore)
PUSHER = web.AppKey("pusher", PusherClient)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
