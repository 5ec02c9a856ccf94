"""`/health`, `/ready` and `/live` answered from process state alone, on both listeners, with no query."""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from protocols.table import LiveTable, live

HEALTH_PATHS = frozenset({"/health", "/ready", "/live"})
READY_STALE_AFTER = 10.0  # overwritten from settings at start-up: seconds since the database last answered
# Overwritten from settings at start-up (RUSTA_BACKGROUND_STALE_AFTER): seconds without a report from the
# background work (three rollup intervals by default) before it counts as missing.
BACKGROUND_STALE_AFTER = 30.0
# What an operator runs when it is missing (runproxy runs it itself on the embedded broker).
BACKGROUND_COMMAND = "celery -A rusta worker --beat"


@dataclass(frozen=True, slots=True)
class BackgroundReport:
    """Whether the background work reported recently enough, and how long ago it last did (None: never)."""

    ok: bool
    seconds_since: float | None

    def as_json(self) -> dict[str, Any]:
        since = None if self.seconds_since is None else round(self.seconds_since, 1)
        body: dict[str, Any] = {"ok": self.ok, "seconds_since_last_run": since}
        if not self.ok:
            body["message"] = background_message(self)
        return body


def background_report(background_at: float, watching_since: float, now: float,
                      stale_after: float | None = None) -> BackgroundReport:
    """Judge the background work's last report (`background_at`, 0: never).

    It counts as missing once neither it nor the start of watching (`watching_since`) is within `stale_after`
    seconds: a gateway that has just started gives a worker starting beside it time to report, and a process
    that watches nothing (0 and 0) knows nothing, so raises no alarm.
    """
    stale_after = BACKGROUND_STALE_AFTER if stale_after is None else stale_after
    since = now - background_at if background_at > 0 else None
    reference = max(background_at, watching_since)
    return BackgroundReport(ok=reference == 0 or now - reference <= stale_after, seconds_since=since)


def background_message(report: BackgroundReport) -> str:
    """The warning an operator reads on /health and in the admin banner."""
    when = "has never reported" if report.seconds_since is None else \
        f"last reported {report.seconds_since:.0f} s ago"
    return (f"background work (health checks, metrics rollups) {when}: backends are not health-checked and "
            f"no rollups happen; run `{BACKGROUND_COMMAND}` with this gateway's DATABASE_URL and REDIS_URL "
            f"(on the embedded default, runproxy runs it unless started with --no-background)")


def health_status(path: str, state: LiveTable = live, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for one of the health paths.

    /live: the process runs. /health: the process runs and serves a table. /ready: a table is loaded and the
    configuration database answered the table watcher within READY_STALE_AFTER seconds. /health and /ready also
    say whether the background work reported within BACKGROUND_STALE_AFTER seconds; while it has not, their
    status is "degraded" but still 200: taking every gateway out of rotation because the Celery worker stopped
    would turn a loss of health checks into an outage.
    """
    now = time.time() if now is None else now
    table = state.table
    body: dict[str, Any] = {"status": "ok"}
    if path == "/live":
        return 200, body
    body["config_version"] = table.version
    body["routes"] = len(table)
    background = background_report(state.background_at, state.watching_since, now)
    body["background"] = background.as_json()
    if not background.ok:
        body["status"] = "degraded"
    if path == "/health":
        return 200, body
    checks = {
        "table_loaded": state.loaded,
        "database": state.source_ok_at > 0 and now - state.source_ok_at <= READY_STALE_AFTER,
        "background": background.ok,
    }
    body["checks"] = checks
    if checks["table_loaded"] and checks["database"]:
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
