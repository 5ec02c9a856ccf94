"""WebSocket routes of the admin listener: the dashboard's live figures, for logged-in staff (session cookie)."""
from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from metrics.live import LiveMetricsConsumer


def admin_websocket_application() -> Any:
    return AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([
        path("ws/metrics/live/", LiveMetricsConsumer.as_asgi()),
    ])))
