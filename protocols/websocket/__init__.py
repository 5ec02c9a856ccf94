"""WebSocket proxying on the proxy listener: the ASGI app for "websocket" scopes, its limits and its counters."""
from __future__ import annotations

from protocols.websocket.app import WebSocketOptions, WebSocketProxy
from protocols.websocket.handshake import authorize_handshake
from protocols.websocket.metrics import RouteCounters, WebSocketMetrics
from protocols.websocket.policy import WebSocketPolicy, websocket_policy

__all__ = [
    "RouteCounters", "WebSocketMetrics", "WebSocketOptions", "WebSocketPolicy", "WebSocketProxy",
    "authorize_handshake", "websocket_policy",
]
