"""/health and /ready report the background work (health checks, rollups) from process state: "degraded" with
200 once it has not reported for `background_stale_after` seconds, never a 503 on that account alone; both judge
by the HealthLimits they are given (RUSTA_READY_STALE_AFTER, RUSTA_BACKGROUND_STALE_AFTER at start-up)."""
from __future__ import annotations

import asyncio

from protocols.health import DEFAULT_LIMITS, HealthApp, HealthLimits, health_status
from protocols.table import LiveTable, RouteTable

NOW = 1_000_000.0
BACKGROUND_STALE_AFTER = DEFAULT_LIMITS.background_stale_after


def watched(*, background_at: float, watching_since: float = NOW - 3600, database_ok_at: float = NOW) -> LiveTable:
    """A process whose watcher started `watching_since` and last read the heartbeat `background_at` (0: never)."""
    state = LiveTable()
    state.install(RouteTable([], version=3))
    state.source_ok_at = database_ok_at
    state.watching_since = watching_since
    state.background_at = background_at
    return state


def test_ready_says_degraded_but_stays_200_when_the_background_work_stopped_reporting():
    status, body = health_status("/ready", watched(background_at=NOW - 95), now=NOW)
    assert status == 200  # a load balancer keeps the gateway in rotation
    assert body["status"] == "degraded"
    assert body["checks"] == {"table_loaded": True, "database": True, "background": False}
    assert body["background"]["ok"] is False
    assert body["background"]["seconds_since_last_run"] == 95.0
    assert "celery -A rusta worker --beat" in body["background"]["message"]


def test_health_says_degraded_and_how_long_ago_the_background_work_ran():
    status, body = health_status("/health", watched(background_at=NOW - 95), now=NOW)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["background"]["seconds_since_last_run"] == 95.0


def test_background_work_that_never_reported_is_missing_once_the_gateway_watched_long_enough():
    status, body = health_status("/ready", watched(background_at=0.0), now=NOW)
    assert (status, body["status"]) == (200, "degraded")
    assert body["background"]["seconds_since_last_run"] is None
    assert "never reported" in body["background"]["message"]


def test_background_work_that_reported_within_the_interval_is_ok():
    status, body = health_status("/ready", watched(background_at=NOW - BACKGROUND_STALE_AFTER + 1), now=NOW)
    assert (status, body["status"]) == (200, "ok")
    assert body["checks"]["background"] is True
    assert body["background"] == {"ok": True, "seconds_since_last_run": BACKGROUND_STALE_AFTER - 1}


def test_a_gateway_that_just_started_gives_the_background_work_time_to_report():
    state = watched(background_at=NOW - 3600, watching_since=NOW - 5)  # yesterday's heartbeat, a fresh start
    assert health_status("/ready", state, now=NOW)[1]["status"] == "ok"
    assert health_status("/health", state, now=NOW + BACKGROUND_STALE_AFTER + 1)[1]["status"] == "degraded"


def test_a_stale_database_still_makes_ready_unavailable_whatever_the_background_work_does():
    status, body = health_status("/ready", watched(background_at=NOW, database_ok_at=NOW - 3600), now=NOW)
    assert (status, body["status"]) == (503, "unavailable")
    assert body["checks"]["database"] is False


def test_ready_judges_the_database_by_the_limit_it_is_given():
    state = watched(background_at=NOW, database_ok_at=NOW - 4)
    assert health_status("/ready", state, now=NOW)[0] == 200  # within the default 10 s
    status, body = health_status("/ready", state, now=NOW, limits=HealthLimits(ready_stale_after=3.0))
    assert (status, body["status"], body["checks"]["database"]) == (503, "unavailable", False)


def test_health_judges_the_background_work_by_the_limit_it_is_given():
    state = watched(background_at=NOW - 4)
    assert health_status("/health", state, now=NOW)[1]["status"] == "ok"  # within the default 30 s
    status, body = health_status("/health", state, now=NOW, limits=HealthLimits(background_stale_after=3.0))
    assert (status, body["status"], body["background"]["ok"]) == (200, "degraded", False)


def answer(app: HealthApp, method: str, path: str) -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    asyncio.run(app({"type": "http", "method": method, "path": path, "headers": []}, receive, send))
    return sent


def test_the_health_app_answers_for_its_own_table_with_its_own_limits():
    stale = watched(background_at=1.0, watching_since=1.0, database_ok_at=1.0)  # decades ago
    start, body = answer(HealthApp(HealthLimits(ready_stale_after=1e12, background_stale_after=1e12), stale),
                         "GET", "/ready")
    assert start["status"] == 200
    assert b'"status": "ok"' in body["body"]
    assert answer(HealthApp(state=stale), "GET", "/ready")[0]["status"] == 503


def test_the_health_app_answers_head_without_a_body():
    start, body = answer(HealthApp(state=watched(background_at=0.0)), "HEAD", "/health")
    assert (start["status"], body["body"]) == (200, b"")
    assert dict(start["headers"])[b"content-length"] != b"0"  # the length GET would have had
