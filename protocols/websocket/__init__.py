"""WebSocket proxying on the proxy listener: the ASGI app for "websocket" scopes, its guards, limits and counters."""
from __future__ import annotations

from protocols.websocket.app import WebSocketOptions, WebSocketProxy
from protocols.websocket.config import WebSocketPolicy, websocket_policy
from protocols.websocket.guards import OriginNotAllowed, check_handshake
from protocols.websocket.handshake import authorize_handshake
from protocols.websocket.metrics import RouteCounters, WebSocketMetrics

__all__ = [
    "OriginNotAllowed", "RouteCounters", "WebSocketMetrics", "WebSocketOptions",
    "WebSocketPolicy", "WebSocketProxy", "authorize_handshake", "check_handshake", "websocket_policy",
]
