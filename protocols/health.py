"""`/health`, `/ready` and `/live` answered from process state alone, on both listeners, with no query."""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from protocols.table import LiveTable, live

HEALTH_PATHS = frozenset({"/health", "/ready", "/live"})
# What an operator runs when it is missing (runproxy runs it itself on the embedded broker).
BACKGROUND_COMMAND = "celery -A rusta worker --beat"


@dataclass(frozen=True, slots=True)
class HealthLimits:
    """How old the process state may be before the health paths say so, read from settings once at start-up
    (rusta.asgi.health_limits) and passed in: `ready_stale_after` (RUSTA_READY_STALE_AFTER), seconds since the
    configuration database last answered the table watcher before /ready answers 503; `background_stale_after`
    (RUSTA_BACKGROUND_STALE_AFTER), seconds without a report from the background work (three rollup intervals by
    default) before it counts as missing."""

    ready_stale_after: float = 10.0
    background_stale_after: float = 30.0


DEFAULT_LIMITS = HealthLimits()


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


def background_report(background_at: float, watching_since: float, now: float, stale_after: float) -> BackgroundReport:
    """Judge the background work's last report (`background_at`, 0: never).

    It counts as missing once neither it nor the start of watching (`watching_since`) is within `stale_after`
    seconds: a gateway that has just started gives a worker starting beside it time to report, and a process
    that watches nothing (0 and 0) knows nothing, so raises no alarm.
    """
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


def health_status(path: str, state: LiveTable = live, now: float | None = None,
                  limits: HealthLimits = DEFAULT_LIMITS) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for one of the health paths.

    /live: the process runs. /health: the process runs and serves a table. /ready: a table is loaded and the
    configuration database answered the table watcher within `limits.ready_stale_after` seconds. /health and
    /ready also say whether the background work reported within `limits.background_stale_after` seconds; while
    it has not, their status is "degraded" but still 200: taking every gateway out of rotation because the
    Celery worker stopped would turn a loss of health checks into an outage.
    """
    now = time.time() if now is None else now
    table = state.table
    body: dict[str, Any] = {"status": "ok"}
    if path == "/live":
        return 200, body
    body["config_version"] = table.version
    body["routes"] = len(table)
    background = background_report(state.background_at, state.watching_since, now, limits.background_stale_after)
    body["background"] = background.as_json()
    if not background.ok:
        body["status"] = "degraded"
    if path == "/health":
        return 200, body
    checks = {
        "table_loaded": state.loaded,
        "database": state.source_ok_at > 0 and now - state.source_ok_at <= limits.ready_stale_after,
        "background": background.ok,
    }
    body["checks"] = checks
    if checks["table_loaded"] and checks["database"]:
        return 200, body
    body["status"] = "unavailable"
    return 503, body


class HealthApp:
    """ASGI app for the health paths of one process's table, judged by the limits it was built with; HEAD gets
    the headers without the body."""

    __slots__ = ("limits", "state")

    def __init__(self, limits: HealthLimits = DEFAULT_LIMITS, state: LiveTable = live) -> None:
        self.limits = limits
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        status, body = health_status(scope["path"], self.state, limits=self.limits)
        payload = json.dumps(body).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(payload)),
                (b"cache-control", b"no-store"),
            ],
        })
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})
