"""The recorder's consumer window: requests a consumer made, counted per (consumer, route, status), and nothing
for requests without one."""
from __future__ import annotations

import pytest

from protocols.recorder import CONSUMER_BUCKETS, LATENCY_BOUNDS, NullRecorder, Recorder


def call(recorder: Recorder, consumer: str | None, status: int = 200, seconds: float = 0.004,
         route: str | None = "users") -> None:
    recorder.record_request(route, "GET", status, seconds, seconds / 2, 0, 10, "b:1", None, consumer)


def test_a_consumers_requests_are_counted_per_route_and_status():
    recorder = Recorder()
    call(recorder, "billing")
    call(recorder, "billing", seconds=0.02)
    call(recorder, "billing", status=429)
    call(recorder, "billing", route="orders")
    window = recorder.take_consumer_window()
    assert {key: cell[0] for key, cell in window.items()} == {
        ("billing", "users", 200): 2, ("billing", "users", 429): 1, ("billing", "orders", 200): 1}
    cell = window[("billing", "users", 200)]
    assert cell[1] == pytest.approx(0.024)  # the duration sum
    assert (cell[2], cell[3]) == (0.004, 0.02)  # min and max
    assert cell[CONSUMER_BUCKETS + LATENCY_BOUNDS.index(0.005)] == 1
    assert cell[CONSUMER_BUCKETS + LATENCY_BOUNDS.index(0.025)] == 1


def test_requests_without_a_consumer_leave_the_consumer_window_empty():
    recorder = Recorder()
    call(recorder, None)
    call(recorder, "")
    assert recorder.take_consumer_window() == {}
    assert sum(cell[0] for cell in recorder.take_window().values()) == 2  # still counted for the route


def test_a_consumers_request_still_counts_once_in_the_route_window():
    recorder = Recorder()
    call(recorder, "billing")
    assert [cell[0] for cell in recorder.take_window().values()] == [1]


def test_taking_the_consumer_window_starts_a_new_one():
    recorder = Recorder()
    call(recorder, "billing")
    assert len(recorder.take_consumer_window()) == 1
    assert recorder.take_consumer_window() == {}


def test_a_request_that_matched_no_route_is_kept_under_the_empty_route():
    recorder = Recorder()
    call(recorder, "billing", status=404, route=None)
    assert list(recorder.take_consumer_window()) == [("billing", "", 404)]


def test_the_null_recorder_counts_no_consumer():
    recorder = NullRecorder()
    call(recorder, "billing")
    assert recorder.take_consumer_window() == {}
