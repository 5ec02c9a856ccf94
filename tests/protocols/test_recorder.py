"""protocols.recorder: what the proxy reports becomes the totals /metrics shows and the windows history stores."""
from __future__ import annotations

import timeit

from protocols.recorder import BUCKETS, COUNT, LATENCY_BOUNDS, Recorder, Totals, status_class


def record(recorder: Recorder, status: int = 200, duration: float = 0.004, **extra) -> None:
    values = {"route": "users", "method": "GET", "status": status, "duration_s": duration, "upstream_s": 0.003,
              "bytes_in": 10, "bytes_out": 100, "backend": "127.0.0.1:9000", "error_kind": None, **extra}
    recorder.record_request(**values)


def test_requests_are_counted_by_route_method_and_status_class():
    recorder = Recorder()
    for status in (200, 201, 404, 502):
        record(recorder, status)
    record(recorder, method="POST")
    recorder.take_window()
    assert recorder.totals.requests == {("users", "GET", "2xx"): 2, ("users", "GET", "4xx"): 1,
                                        ("users", "GET", "5xx"): 1, ("users", "POST", "2xx"): 1}


def test_a_request_without_a_status_counts_as_0xx():
    assert status_class(0) == "0xx"
    assert status_class(499) == "4xx"


def test_durations_land_in_the_bucket_whose_bound_is_the_first_at_or_above_them():
    recorder = Recorder()
    record(recorder, duration=0.001)  # exactly a bound: le="0.001"
    record(recorder, duration=0.0011)
    record(recorder, duration=1000.0)  # beyond the last bound: +Inf
    recorder.take_window()
    histogram = recorder.totals.request_seconds["users"]
    assert histogram[LATENCY_BOUNDS.index(0.001)] == 1
    assert histogram[LATENCY_BOUNDS.index(0.0025)] == 1
    assert histogram[BUCKETS - 1] == 1
    assert histogram[BUCKETS] == 1000.0021


def test_upstream_time_is_kept_per_backend_and_skipped_when_no_backend_answered():
    recorder = Recorder()
    record(recorder, upstream_s=0.002)
    record(recorder, status=502, upstream_s=None, error_kind="upstream_connect_refused")
    recorder.take_window()
    assert sum(recorder.totals.upstream_seconds["127.0.0.1:9000"][:BUCKETS]) == 1


def test_bytes_are_counted_in_and_out_per_route():
    recorder = Recorder()
    record(recorder, bytes_in=5, bytes_out=7)
    record(recorder, bytes_in=1, bytes_out=2)
    recorder.take_window()
    assert recorder.totals.bytes == {("users", "in"): 6, ("users", "out"): 9}


def test_a_request_matching_no_route_is_counted_under_an_empty_route():
    recorder = Recorder()
    record(recorder, route=None, backend=None, status=404, error_kind="route_not_found")
    recorder.take_window()
    assert recorder.totals.requests == {("", "GET", "4xx"): 1}


def test_upstream_errors_are_counted_by_backend_and_kind_from_gateway_error_types():
    recorder = Recorder()
    recorder.upstream_error("b:1", "upstream_connect_refused")
    recorder.upstream_error("b:1", "upstream_timeout")
    recorder.upstream_error("b:1", "upstream_connect_timeout")
    recorder.upstream_error("b:1", "reset")
    assert recorder.totals.upstream_errors == {("b:1", "refused"): 1, ("b:1", "timeout"): 2, ("b:1", "reset"): 1}


def test_active_connections_go_up_and_down_and_the_peak_stays():
    recorder = Recorder()
    for _ in range(3):
        recorder.connection_opened()
    recorder.connection_closed()
    recorder.connection_closed()
    snapshot = recorder.snapshot()
    assert (snapshot.connections_active, snapshot.connections_peak) == (1, 3)


def test_rate_limits_and_cache_results_are_counted_per_route():
    recorder = Recorder()
    recorder.rate_limited("users")
    recorder.rate_limited("users")
    recorder.cache_result("users", hit=True)
    recorder.cache_result("users", hit=False)
    recorder.cache_result("users", hit=False)
    assert recorder.totals.rate_limited == {"users": 2}
    assert recorder.totals.cache == {("users", "hit"): 1, ("users", "miss"): 2}


def test_a_breaker_moving_to_open_is_counted_once_per_move():
    recorder = Recorder()
    row = {"route": "users", "backend": "b:1"}
    for state in ("closed", "open", "open", "half_open", "open", "closed"):
        recorder.breakers_seen([{**row, "state": state}])
    assert recorder.totals.breaker_opens == {("users", "b:1"): 2}


def test_taking_the_window_starts_an_empty_one_and_keeps_the_totals():
    recorder = Recorder()
    record(recorder)
    window = recorder.take_window()
    assert sum(cell[COUNT] for cell in window.values()) == 1
    assert recorder.take_window() == {}
    record(recorder)
    recorder.take_window()
    assert recorder.totals.requests == {("users", "GET", "2xx"): 2}


def test_totals_survive_a_json_round_trip_and_add_up():
    recorder = Recorder()
    record(recorder)
    recorder.rate_limited("users")
    recorder.take_window()
    copy = Totals.from_json(recorder.snapshot().as_json())
    copy.add(recorder.snapshot())
    assert copy.requests == {("users", "GET", "2xx"): 2}
    assert copy.rate_limited == {"users": 2}
    assert sum(copy.request_seconds["users"][:BUCKETS]) == 2


def test_recording_a_request_costs_a_few_microseconds_at_most():
    recorder = Recorder()
    call = recorder.record_request
    runs = 20_000
    best = min(timeit.repeat(lambda: call("users", "GET", 200, 0.0031, 0.0025, 0, 112, "127.0.0.1:9000", None),
                             number=runs, repeat=5))
    # About 1 µs measured here; the proxy spends 140-230 µs of CPU per request, so this stays well under 5%.
    assert best / runs < 5e-6


def websocket_rows() -> list[dict[str, object]]:
    return [{"route_id": 1, "route": "chat", "open": 2, "opened": 5, "closed": 3, "rejected": 1,
             "messages_from_client": 10, "messages_to_client": 12, "bytes_from_client": 100, "bytes_to_client": 120}]


def test_the_websocket_proxys_counters_are_in_the_snapshot_and_add_up_over_workers():
    recorder = Recorder()
    recorder.websocket_source = websocket_rows
    snapshot = Totals.from_json(recorder.snapshot().as_json())
    assert snapshot.websocket[("chat", "open")] == 2
    assert snapshot.websocket[("chat", "bytes_to_client")] == 120
    combined = Totals()
    combined.add(snapshot)
    combined.add(snapshot, gauges=False)  # a worker that died: its tunnels are not open any more
    assert combined.websocket[("chat", "open")] == 2
    assert combined.websocket[("chat", "messages_from_client")] == 20


def test_grpc_calls_are_counted_by_route_and_status_and_survive_the_workers_files():
    recorder = Recorder()
    recorder.grpc_call("echo", 0)
    recorder.grpc_call("echo", 0)
    recorder.grpc_call("echo", 14)
    totals = recorder.snapshot()
    assert totals.grpc_calls == {("echo", "0"): 2, ("echo", "14"): 1}
    combined = Totals()
    combined.add(Totals.from_json(totals.as_json()))
    combined.add(totals)
    assert combined.grpc_calls == {("echo", "0"): 4, ("echo", "14"): 2}
