"""metrics.procfiles: the figures of every worker of a gateway, combined from one file per worker."""
from __future__ import annotations

import os
import subprocess
import sys

from metrics import procfiles
from protocols.recorder import Recorder, Totals


def totals(requests: int, active: int = 0) -> Totals:
    recorder = Recorder()
    for _ in range(requests):
        recorder.record_request("users", "GET", 200, 0.01, None, 0, 10, "b:1", None)
    for _ in range(active):
        recorder.connection_opened()
    recorder.take_window()
    return recorder.snapshot()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_files_of_live_workers_add_up(tmp_path):
    procfiles.write(tmp_path, totals(3, active=1), [], 1.0, pid=os.getpid())
    procfiles.write(tmp_path, totals(4, active=2), [], 2.0, pid=os.getppid())
    combined = procfiles.combined(tmp_path)
    assert combined.workers == 2
    assert combined.totals.requests == {("users", "GET", "2xx"): 7}
    assert combined.totals.connections_active == 3


def test_a_dead_workers_counters_are_kept_but_not_its_gauges(tmp_path):
    pid = dead_pid()
    procfiles.write(tmp_path, totals(5, active=4), [], 1.0, pid=pid)
    procfiles.write(tmp_path, totals(1), [], 1.0, pid=os.getpid())
    first = procfiles.combined(tmp_path)
    assert not (tmp_path / f"{pid}.json").exists()
    second = procfiles.combined(tmp_path)
    for combined in (first, second):
        assert combined.totals.requests == {("users", "GET", "2xx"): 6}
        assert combined.totals.connections_active == 0
        assert combined.workers == 1


def test_a_worker_stopping_cleanly_keeps_its_counters(tmp_path):
    procfiles.write(tmp_path, totals(2), [], 1.0, pid=os.getpid())
    procfiles.remove(tmp_path, pid=os.getpid())
    combined = procfiles.combined(tmp_path)
    assert combined.workers == 0
    assert combined.totals.requests == {("users", "GET", "2xx"): 2}


def test_the_worst_breaker_state_over_the_workers_is_reported(tmp_path):
    row = {"route": "users", "backend": "b:1", "consecutive_failures": 0, "opened_at": None}
    procfiles.write(tmp_path, Totals(), [{**row, "state": "closed"}], 1.0, pid=os.getpid())
    procfiles.write(tmp_path, Totals(), [{**row, "state": "open"}], 1.0, pid=os.getppid())
    assert procfiles.combined(tmp_path).breakers == {("users", "b:1"): 2}


def test_resetting_the_folder_starts_from_zero(tmp_path):
    procfiles.write(tmp_path, totals(2), [], 1.0, pid=dead_pid())
    procfiles.combined(tmp_path)  # buries it in dead.json
    procfiles.reset(tmp_path)
    assert procfiles.combined(tmp_path).totals.requests == {}
