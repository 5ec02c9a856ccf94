"""TEMPORARY: records proxied requests from outside ProxyApp until the lead wires the recorder into it.

`RecordingProxy` wraps the proxy listener's "http" app and reports each request to the recorder: method,
status, duration, bytes out, and the route (matched again here, which the real wiring will not need). It knows
no backend, upstream time or upstream error: those need the calls inside ProxyApp listed in the report. Remove
it (rusta/asgi.py, one line) once ProxyApp calls the recorder itself.
"""
from __future__ import annotations

import time
from typing import Any

from metrics.recorder import Recorder, recorder
from protocols.health import HEALTH_PATHS
from protocols.http.headers import host_key, normalize_path, scan_request_headers


class RecordingProxy:
    def __init__(self, app: Any, state: Any, source: Recorder = recorder) -> None:
        self.app = app
        self.state = state
        self.recorder = source

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = {"status": 0, "out": 0}

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["out"] += len(message.get("body", b""))
            await send(message)

        self.recorder.connection_opened()
        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.recorder.connection_closed()
            head = scan_request_headers(scope["headers"])
            match = self.state.table.match(scope["method"], host_key(head.host), normalize_path(scope["path"]))
            route = match.route.name if match.route is not None else None
            self.recorder.record_request(route, scope["method"], answer["status"], time.perf_counter() - started,
                                         None, 0, answer["out"], None, None)
