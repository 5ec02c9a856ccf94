"""`/health`, `/ready` and `/live` answered from process state alone, on both listeners, with no query."""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from protocols.table import LiveTable, live

HEALTH_PATHS = frozenset({"/health", "/ready", "/live"})
READY_STALE_AFTER = 10.0  # overwritten from settings at start-up: seconds since the database last answered


def health_status(path: str, state: LiveTable = live, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for one of the health paths.

    /live: the process runs. /health: the process runs and serves a table. /ready: a table is loaded and the
    configuration database answered the table watcher within READY_STALE_AFTER seconds.
    """
    now = time.time() if now is None else now
    table = state.table
    body: dict[str, Any] = {"status": "ok"}
    if path == "/live":
        return 200, body
    body["config_version"] = table.version
    body["routes"] = len(table)
    if path == "/health":
        return 200, body
    checks = {
        "table_loaded": state.loaded,
        "database": state.source_ok_at > 0 and now - state.source_ok_at <= READY_STALE_AFTER,
    }
    body["checks"] = checks
    if all(checks.values()):
        return 200, body
    body["status"] = "unavailable"
    return 503, body


async def health_app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                     send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """ASGI app for the health paths; HEAD gets the headers without the body."""
    status, body = health_status(scope["path"])
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-store"),
        ],
    })
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})
