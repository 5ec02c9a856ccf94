"""metrics.flusher: a worker's recorder drained off the request path into its totals file and the history."""
from __future__ import annotations

import os
import time

import pytest

from metrics import procfiles
from metrics.flusher import WorkerFlusher
from metrics.history import DatabaseStore
from metrics.models import RawPoint
from protocols.ai import records
from protocols.ai.decide import Decision
from protocols.ai.records import DecisionLog
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ticks_write_the_totals_file_and_the_history_and_stop_keeps_the_counters(tmp_path):
    recorder = Recorder()
    clock = Clock(1_800_000_000.0)
    row = {"route": "users", "backend": "10.0.0.5:8080", "state": "open", "consecutive_failures": 5,
           "opened_at": None}
    flusher = WorkerFlusher(recorder, tmp_path, DatabaseStore(), history_every=0.0, clock=clock,
                            breakers=lambda: [row])
    flusher._thread.start()  # what start() does, without scheduling ticks on a loop
    for _ in range(3):
        recorder.record_request("users", "GET", 200, 0.01, 0.005, 0, 10, "10.0.0.5:8080", None)
    flusher.tick()
    clock.now += 1
    recorder.record_request("users", "GET", 503, 0.01, 0.005, 0, 10, "10.0.0.5:8080", None)
    flusher.stop()

    combined = procfiles.combined(tmp_path)
    assert combined.totals.requests == {("users", "GET", "2xx"): 3, ("users", "GET", "5xx"): 1}
    assert combined.totals.breaker_opens == {("users", "10.0.0.5:8080"): 1}
    assert not (tmp_path / f"{os.getpid()}.json").exists()  # folded into the dead workers' counters
    point = RawPoint.objects.get()
    assert (point.count, point.errors_5xx, point.route, point.backend) == (4, 1, "users", "10.0.0.5:8080")


def test_breaker_backends_are_labelled_as_requests_are(monkeypatch):
    from metrics import flusher
    from protocols import breakers

    snapshot = breakers.BreakerSnapshot("users", "http://10.0.0.5:8080", "open", 5, None)
    monkeypatch.setattr(breakers, "snapshot", lambda: [snapshot])
    assert flusher.breaker_rows()[0]["backend"] == "10.0.0.5:8080"


def test_each_tick_writes_this_processs_ai_record_into_its_file(tmp_path):
    log = DecisionLog()
    records.register(log)  # held weakly: gone with this test's `log`
    flusher = WorkerFlusher(Recorder(), tmp_path, None, breakers=list)
    flusher._thread.start()
    log.record("shop", "content_analysis", Decision(1, "llm", "asked the model", 0.3), "http://10.0.0.6:8080")
    flusher.tick()
    flusher._queue.put(None)
    flusher._thread.join(5)

    ai = procfiles.combined(tmp_path).ai
    assert ai["decisions"] == [["shop", "content_analysis", "llm", 1]]
    assert [(row["backend"], row["elapsed_ms"]) for row in ai["recent"]] == [("http://10.0.0.6:8080", 300.0)]


def test_stopping_keeps_the_ai_counters_of_the_last_tick(tmp_path):
    log = DecisionLog()
    flusher = WorkerFlusher(Recorder(), tmp_path, None, breakers=list,
                            ai=lambda: records.snapshot(logs=[log], clients=[]))
    flusher._thread.start()
    log.record("shop", "content_analysis", Decision(None, "fallback", "budget exceeded", 1.0))
    flusher.stop()  # its last tick sees the decision; the file is folded into dead.json

    ai = procfiles.combined(tmp_path).ai
    assert ai["fallbacks"] == [["shop", "content_analysis", "budget exceeded", 1]]
    assert ai["recent"] == []


def test_each_tick_writes_the_workers_cpu_time_beside_the_requests_it_served(tmp_path):
    """The capacity advice measures requests per second of busy time from these."""
    recorder = Recorder()
    flusher = WorkerFlusher(recorder, tmp_path, None, breakers=list)
    flusher._thread.start()
    for _ in range(3):
        recorder.record_request("users", "GET", 200, 0.01, 0.005, 0, 10, "10.0.0.5:8080", None)
    flusher.tick()
    flusher._queue.put(None)
    flusher._thread.join(5)

    combined = procfiles.combined(tmp_path)
    assert combined.busy_requests == 3
    assert 0 < combined.busy_seconds <= time.process_time()
