"""The proxy listener's protocol router sends WebSocket handshakes to WebSocketProxy."""
from __future__ import annotations

import asyncio
from typing import Any

from protocols.dataplane import DataPlane, ProxyOptions
from protocols.table import LiveTable
from rusta.asgi import build_proxy_application


def test_a_websocket_scope_on_the_proxy_listener_reaches_the_websocket_app() -> None:
    app = build_proxy_application(DataPlane(ProxyOptions(state=LiveTable(), access_log=False)))
    scope = {"type": "websocket", "path": "/ws/none", "raw_path": b"/ws/none", "query_string": b"",
             "headers": [(b"host", b"gw.example")], "subprotocols": [], "client": ("127.0.0.1", 5000),
             "scheme": "ws", "extensions": {"websocket.http.response": {}}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 404
