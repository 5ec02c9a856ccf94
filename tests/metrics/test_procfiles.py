"""metrics.procfiles: the figures of every worker of a gateway, combined from one file per worker."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from metrics import procfiles
from protocols.ai import records
from protocols.ai.decide import Decision, Source
from protocols.ai.records import DecisionLog
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


def test_the_live_workers_busy_time_adds_up_with_the_requests_they_served(tmp_path):
    """What the capacity advice divides: requests over CPU seconds, of the workers that report their CPU time."""
    procfiles.write(tmp_path, totals(30), [], 1.0, pid=os.getpid(), cpu_s=2.0)
    procfiles.write(tmp_path, totals(60), [], 1.0, pid=os.getppid(), cpu_s=4.0)
    combined = procfiles.combined(tmp_path)
    assert (combined.busy_requests, combined.busy_seconds) == (90, 6.0)


def test_a_worker_without_its_cpu_time_is_left_out_of_the_busy_figures(tmp_path):
    procfiles.write(tmp_path, totals(30), [], 1.0, pid=os.getpid(), cpu_s=2.0)
    procfiles.write(tmp_path, totals(60), [], 1.0, pid=os.getppid())
    combined = procfiles.combined(tmp_path)
    assert (combined.busy_requests, combined.busy_seconds) == (30, 2.0)


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


# --- AI routing's record (protocols.ai.records), added up like the other figures --------------------------------

NOW = 1_800_000_030.0  # half a minute into a minute


def ai_section(route: str, sources: list[Source], *, start: float = NOW, step: float = 1.0,
               compared: tuple[int, int] = (0, 0), verdicts: int = 0) -> dict:
    """A worker's AI snapshot: one decision per entry of `sources`, `step` seconds apart from `start`."""
    clock = iter([start + index * step for index in range(len(sources) + verdicts)])
    log = DecisionLog(clock=lambda: next(clock))
    for source in sources:
        reason = "no confident answer" if source == "fallback" else "matched"
        log.record(route, "content_analysis", Decision(0, source, reason, 0.002), "http://10.0.0.5:8080")
    for _ in range(verdicts):
        log.verdict(route, "10.1.1.1", 9.5, ("rate",), "shadow")
    for index in range(compared[1]):
        log.compare(route, index < compared[0])
    return records.snapshot(logs=[log], clients=[], now=start + len(sources) * step)


def write_ai(folder, section: dict, pid: int, at: float = NOW) -> None:
    procfiles.write(folder, Totals(), [], at, pid=pid, ai=section)


def test_the_ai_records_of_live_workers_add_up(tmp_path):
    write_ai(tmp_path, ai_section("shop", ["model", "model", "llm"], compared=(3, 4)), os.getpid())
    write_ai(tmp_path, ai_section("shop", ["model", "fallback"], compared=(1, 1), verdicts=1), os.getppid())
    ai = procfiles.combined(tmp_path).ai
    assert ai["decisions"] == [["shop", "content_analysis", "fallback", 1], ["shop", "content_analysis", "llm", 1],
                               ["shop", "content_analysis", "model", 3]]
    assert ai["fallbacks"] == [["shop", "content_analysis", "no confident answer", 1]]
    assert ai["agreement"] == [["shop", 4, 5]]
    [[route, strategy, histogram]] = ai["decision_seconds"]
    assert sum(histogram[:-1]) == 5 and histogram[-1] == pytest.approx(0.010)
    minute = int(NOW // 60) * 60
    assert ai["minutes"] == [[minute, "shop", "fallback", 1], [minute, "shop", "llm", 1],
                             [minute, "shop", "model", 3]]
    assert ai["anomalies"] == [["shop", "shadow", 1]]
    assert len(ai["recent"]) == 5 and len(ai["verdicts"]) == 1


def test_the_recent_decisions_of_the_workers_are_merged_by_time_and_the_last_50_kept(tmp_path):
    write_ai(tmp_path, ai_section("shop", ["model"] * 40, start=NOW, step=2.0), os.getpid())
    write_ai(tmp_path, ai_section("shop", ["llm"] * 40, start=NOW + 1, step=2.0), os.getppid())
    recent = procfiles.combined(tmp_path).ai["recent"]
    times = [row["at"] for row in recent]
    assert len(recent) == 50
    assert times == sorted(times) and times[-1] == NOW + 79  # the newest of the 80
    assert {row["source"] for row in recent[-2:]} == {"model", "llm"}


def test_a_dead_workers_ai_counters_are_kept_but_not_its_recent_decisions(tmp_path):
    pid = dead_pid()
    write_ai(tmp_path, ai_section("shop", ["model", "model"], verdicts=1), pid)
    write_ai(tmp_path, ai_section("shop", ["llm"]), os.getpid())
    for ai in (procfiles.combined(tmp_path).ai, procfiles.combined(tmp_path).ai):  # the second reads dead.json
        assert ai["decisions"] == [["shop", "content_analysis", "llm", 1], ["shop", "content_analysis", "model", 2]]
        assert ai["anomalies"] == [["shop", "shadow", 1]]
        assert [row["source"] for row in ai["recent"]] == ["llm"]
        assert ai["verdicts"] == []
    assert not (tmp_path / f"{pid}.json").exists()


def test_a_worker_stopping_cleanly_keeps_its_ai_counters(tmp_path):
    write_ai(tmp_path, ai_section("shop", ["cache", "cache", "cache"]), os.getpid())
    procfiles.remove(tmp_path, pid=os.getpid())
    ai = procfiles.combined(tmp_path).ai
    assert ai["decisions"] == [["shop", "content_analysis", "cache", 3]]
    assert ai["recent"] == []


def test_dead_workers_per_minute_counts_older_than_an_hour_are_forgotten(tmp_path):
    write_ai(tmp_path, ai_section("shop", ["model"], start=NOW), dead_pid(), at=NOW)
    procfiles.combined(tmp_path)
    later = NOW + 2 * 3600
    write_ai(tmp_path, ai_section("shop", ["llm"], start=later), dead_pid(), at=later)
    ai = procfiles.combined(tmp_path).ai
    assert ai["minutes"] == [[int(later // 60) * 60, "shop", "llm", 1]]  # the first worker's minute is gone
    assert ai["decisions"] == [["shop", "content_analysis", "llm", 1], ["shop", "content_analysis", "model", 1]]

