"""The abuse part of the worker's flusher: windows written (again after a failure), the table refreshed when due,
and kept when the database fails."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.utils import OperationalError

from metrics.abuse.flush import AbuseFlush
from protocols.abuse.config import AbusePolicy
from protocols.abuse.counters import AbuseCounters, ClosedWindow
from protocols.abuse.sanctions import LimitRow, Sanctions, SanctionTable, table_of
from protocols.recorder import Recorder

TABLE = table_of([], [LimitRow("orders", "ip:1", 3, 60.0)])


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FlakyWriter:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[list[ClosedWindow]] = []

    def __call__(self, windows: Iterable[ClosedWindow], source: str) -> int:
        if self.failures:
            self.failures -= 1
            raise OperationalError("database is locked")
        self.written.append(list(windows))
        return 1


def flush(writer: FlakyWriter, loader, clock: Clock) -> tuple[AbuseFlush, AbuseCounters]:
    counters = AbuseCounters(Recorder(), window_s=1, clock=clock)
    routes = [("orders", AbusePolicy(personalized_limits=True))]
    return AbuseFlush(counters, Sanctions(), lambda: routes, clock=clock, writer=writer, loader=loader), counters


def test_a_window_whose_write_failed_is_written_with_the_next_one():
    clock, writer = Clock(), FlakyWriter(failures=1)
    abuse, counters = flush(writer, lambda now, routes: TABLE, clock)
    counters.record("orders", "ip:1", 200, 0, 0, "/", None)
    clock.now += 1
    abuse.work(abuse.take(), "me")
    counters.record("orders", "ip:1", 200, 0, 0, "/", None)
    clock.now += 1
    abuse.work(abuse.take(), "me")
    assert [[window.start for window in windows] for windows in writer.written] == [[1_000.0, 1_001.0]]
    assert abuse.pending == []


def test_the_table_is_refreshed_when_due_and_kept_when_the_database_fails():
    clock, calls = Clock(), []

    def loader(now: datetime, routes: list[tuple[str, AbusePolicy]]) -> SanctionTable:
        calls.append(now)
        if len(calls) == 2:
            raise OperationalError("server closed the connection")
        return TABLE

    abuse, _ = flush(FlakyWriter(0), loader, clock)
    abuse.work(None, "me")
    assert abuse.sanctions.table is TABLE
    clock.now += 0.5
    abuse.work(None, "me")  # not due yet
    assert len(calls) == 1
    clock.now += 0.6
    abuse.work(None, "me")  # due, fails: the last table stays
    assert len(calls) == 2 and abuse.sanctions.table is TABLE
