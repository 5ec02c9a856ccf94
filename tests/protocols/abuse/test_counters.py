"""The abuse counters: who a request counts for, what each window holds, and the bound on clients."""
from __future__ import annotations

import hashlib

import pytest

from protocols.abuse.counters import (
    ADDRESSES,
    AUTH_FAILURES,
    BYTES_IN,
    BYTES_OUT,
    ERRORS_4XX,
    NOT_FOUND,
    OVERFLOW,
    PATHS,
    RATE_LIMITED,
    REQUESTS,
    AbuseCounters,
    client_identity,
)
from protocols.recorder import Recorder


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def counters(max_clients: int = 50_000, start: float = 1_000.0) -> tuple[AbuseCounters, Clock, Recorder]:
    clock = Clock(start)
    recorder = Recorder()
    return AbuseCounters(recorder, window_s=10, max_clients=max_clients, clock=clock), clock, recorder


def test_a_consumer_comes_first_then_the_subject_then_the_key_then_the_address():
    key_headers = [(b"x-api-key", b"rk_unknown")]
    assert client_identity("billing", "alice", key_headers, "10.0.0.1") == "consumer:billing"
    assert client_identity(None, "alice", key_headers, "10.0.0.1") == "sub:alice"
    digest = hashlib.sha256(b"rk_unknown").hexdigest()[:16]
    assert client_identity(None, None, key_headers, "10.0.0.1") == f"key:{digest}"
    assert client_identity(None, None, [(b"authorization", b"Bearer rk_unknown")], "10.0.0.1") == f"key:{digest}"
    assert client_identity(None, None, [(b"authorization", b"Bearer eyJ.x.y")], "10.0.0.1") == "ip:10.0.0.1"


def test_each_status_lands_in_its_counts():
    abuse, _, _ = counters()
    for status in (200, 401, 403, 404, 429, 400, 502):
        abuse.record("r", "ip:1.2.3.4", status, 10, 100, "/a", None)
    cell = abuse.cells[("r", "ip:1.2.3.4")]
    assert cell[REQUESTS] == 7
    assert cell[ERRORS_4XX] == 5
    assert (cell[AUTH_FAILURES], cell[NOT_FOUND], cell[RATE_LIMITED]) == (2, 1, 1)
    assert (cell[BYTES_IN], cell[BYTES_OUT]) == (70, 700)


def test_paths_and_addresses_are_counted_once_each():
    abuse, _, _ = counters()
    for index in range(5):
        abuse.record("r", "sub:alice", 200, 0, 0, f"/items/{index % 3}", f"10.0.0.{index % 2}")
    cell = abuse.cells[("r", "sub:alice")]
    assert cell[PATHS] == {"/items/0", "/items/1", "/items/2"}
    assert cell[ADDRESSES] == {"10.0.0.0", "10.0.0.1"}


def test_a_window_is_handed_over_only_once_it_ended_and_the_next_one_is_aligned():
    abuse, clock, _ = counters(start=1_003.0)
    assert abuse.start == 1_000.0
    abuse.record("r", "ip:a", 200, 0, 0, "/", None)
    clock.now = 1_009.9
    assert abuse.take() is None
    clock.now = 1_010.001
    closed = abuse.take()
    assert closed is not None and (closed.start, closed.window_s) == (1_000.0, 10)
    assert list(closed.cells) == [("r", "ip:a")]
    assert abuse.start == 1_010.0 and abuse.cells == {}


def test_an_empty_window_hands_over_nothing():
    abuse, clock, _ = counters()
    clock.now += 20
    assert abuse.take() is None


def test_the_final_take_hands_over_a_window_before_its_end():
    abuse, _, _ = counters()
    abuse.record("r", "ip:a", 200, 0, 0, "/", None)
    assert abuse.take() is None
    closed = abuse.take(final=True)
    assert closed is not None and closed.cells[("r", "ip:a")][REQUESTS] == 1


def test_past_the_bound_new_clients_count_under_overflow_and_the_recorder_says_so():
    abuse, _, recorder = counters(max_clients=2)
    for client in ("ip:a", "ip:b", "ip:c", "ip:d"):
        abuse.record("r", client, 200, 0, 0, "/", None)
    abuse.record("r", "ip:a", 200, 0, 0, "/", None)  # a client already counted keeps its own cell
    assert abuse.cells[("r", "ip:a")][REQUESTS] == 2
    assert abuse.cells[("r", OVERFLOW)][REQUESTS] == 2
    assert ("r", "ip:c") not in abuse.cells
    assert recorder.snapshot().abuse_overflow == {"r": 2}


def test_a_window_shorter_than_a_second_is_refused():
    with pytest.raises(ValueError, match="at least 1 second"):
        AbuseCounters(Recorder(), window_s=0.5)
