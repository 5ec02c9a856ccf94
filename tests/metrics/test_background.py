"""The background work's heartbeat: task runs record when they ran (throttled), and every gateway process's
table watcher reads it in the poll it already makes, so /health and /ready can tell when it stopped."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics import tasks
from metrics.background import Heartbeat
from protocols.health import health_status
from protocols.table import LiveTable
from routes.live import TableWatcher
from routes.models import ConfigState

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stored() -> datetime | None:
    return ConfigState.objects.get(pk=1).background_ran_at


def test_a_beat_records_when_the_background_work_ran_even_before_any_configuration_change():
    assert not ConfigState.objects.exists()
    Heartbeat(clock=Clock(1_800_000_000.0)).beat()
    assert stored() == datetime.fromtimestamp(1_800_000_000.0, tz=UTC)


def test_beats_write_at_most_once_per_interval():
    clock = Clock(1_800_000_000.0)
    heartbeat = Heartbeat(clock=clock, every=5.0)
    assert heartbeat.beat() is True
    clock.now += 1
    with CaptureQueriesContext(connection) as queries:
        assert heartbeat.beat() is False  # the health-check task runs every second: no write for it each time
    assert len(queries) == 0
    assert stored() == datetime.fromtimestamp(1_800_000_000.0, tz=UTC)
    clock.now += 5
    assert heartbeat.beat() is True
    assert stored() == datetime.fromtimestamp(1_800_000_006.0, tz=UTC)


def test_a_beat_leaves_the_configuration_change_time_alone():
    ConfigState.objects.create(pk=1, version=4)
    changed_at = ConfigState.objects.get(pk=1).changed_at
    Heartbeat(clock=Clock(1_800_000_000.0)).beat()
    state = ConfigState.objects.get(pk=1)
    assert (state.version, state.changed_at) == (4, changed_at)


@pytest.mark.parametrize("task", [tasks.run_health_checks, tasks.rollup, tasks.apply_retention])
def test_every_background_task_run_leaves_a_heartbeat(task, monkeypatch):
    monkeypatch.setattr(tasks.heartbeat, "written_at", 0.0)  # another test's beat must not throttle this one
    task()
    ran_at = stored()
    assert ran_at is not None
    assert abs((datetime.now(tz=UTC) - ran_at).total_seconds()) < 60


@pytest.mark.django_db(transaction=True)  # the watcher closes old connections, as in a gateway
def test_the_watcher_reads_the_heartbeat_in_its_one_query_per_poll():
    state = LiveTable()
    clock = Clock(1_799_990_000.0)
    watcher = TableWatcher(state, interval=60, clock=clock)
    watcher.start()
    watcher.stop()
    clock.now = 1_800_000_100.0
    Heartbeat(clock=Clock(1_800_000_000.0)).beat()
    with CaptureQueriesContext(connection) as queries:
        watcher.check_once()
    assert len(queries) == 1
    assert state.background_at == 1_800_000_000.0
    status, body = health_status("/ready", state, now=1_800_000_100.0)
    assert (status, body["status"], body["background"]["seconds_since_last_run"]) == (200, "degraded", 100.0)
