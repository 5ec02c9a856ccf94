"""/health and /ready report the background work (health checks, rollups) from process state: "degraded" with
200 once it has not reported for BACKGROUND_STALE_AFTER seconds, never a 503 on that account alone."""
from __future__ import annotations

from protocols.health import BACKGROUND_STALE_AFTER, health_status
from protocols.table import LiveTable, RouteTable

NOW = 1_000_000.0


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
