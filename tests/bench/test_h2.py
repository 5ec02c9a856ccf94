"""Tests of bench/h2.py: reading h2load's report and the percentiles of its per-request log."""
from __future__ import annotations

import pytest

from bench.h2 import H2loadError, parse, percentiles_ms, read_log

REPORT = """\
starting benchmark...
spawning thread #0: 50 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 5967.00 req/s, 204.20KB/s
requests: 17901 total, 17901 started, 17901 done, 17890 succeeded, 11 failed, 0 errored, 0 timeout
status codes: 17880 2xx, 0 3xx, 4 4xx, 6 5xx
traffic: 408.41KB (418210) total, 111.40KB (114074) headers (space savings 94.77%), 201.85KB (206690) data
                     min         max         mean         sd        +/- sd
time for request:     4.02ms     38.87ms     16.72ms      5.77ms    67.36%
time for connect:        0us         0us         0us         0us     0.00%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :     574.29      623.72      596.45       16.10    70.00%
"""

NOTHING = """\
finished in 3.00s, 0.00 req/s, 0B/s
requests: 0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
"""


def _log(elapsed_us: list[int]) -> str:
    return "".join(f"1796607395{i:06d}\t200\t{us}\n" for i, us in enumerate(elapsed_us))


def test_throughput_and_errors_come_from_the_report() -> None:
    result = parse(REPORT, _log([1000] * 10))
    assert result.requests_per_s == 5967.0
    assert result.requests == 17901
    assert result.failed == 11
    assert result.non_2xx == 10
    assert result.errors == 21


def test_percentiles_come_from_the_log_in_milliseconds() -> None:
    result = parse(REPORT, _log(list(range(100, 10_100, 100))))  # 100 requests: 0.1 ms to 10 ms
    assert result.latency_ms == {"p50": 5.0, "p75": 7.5, "p90": 9.0, "p99": 9.9}


def test_percentiles_use_the_nearest_rank() -> None:
    assert percentiles_ms([3000, 1000, 2000]) == {"p50": 2.0, "p75": 3.0, "p90": 3.0, "p99": 3.0}


def test_log_lines_that_are_not_requests_are_left_out() -> None:
    assert read_log("1796607395083343\t200\t14283\n\ngarbage\n1796607395080516\t0\t17284\n") == [14283, 17284]


def test_a_run_without_a_successful_request_is_an_error_not_a_zero() -> None:
    with pytest.raises(H2loadError, match="no successful request"):
        parse(NOTHING, "")


def test_a_report_it_cannot_read_is_an_error() -> None:
    with pytest.raises(H2loadError, match="cannot read"):
        parse("unable to connect to 127.0.0.1:9 Connection refused\n", "")


def test_an_empty_log_is_an_error() -> None:
    with pytest.raises(H2loadError, match="logged no request"):
        parse(REPORT, "")
