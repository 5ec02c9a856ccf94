"""Tests of bench/wrk.py: reading wrk's --latency report."""
from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.procs import Processes
from bench.wrk import WrkError, parse, request_script, run

CLEAN = """\
Running 10s test @ http://127.0.0.1:8000/bench
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.40ms    2.13ms  41.02ms   80.12%
    Req/Sec     6.81k   412.55     7.50k    71.00%
  Latency Distribution
     50%  850.00us
     75%    7.99ms
     90%    9.50ms
     99%    1.02s
  67812 requests in 10.00s, 15.01MB read
Requests/sec:   6779.93
Transfer/sec:      1.50MB
"""

FAILING = """\
Running 2s test @ http://127.0.0.1:8000/bench
  1 threads and 50 connections
  Latency Distribution
     50%   85.00us
     75%  113.00us
     90%  147.00us
     99%    1.28ms
  79883 requests in 1.10s, 11.96MB read
  Socket errors: connect 0, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 120
Requests/sec:  79725.06
"""


def test_it_reads_the_rate_and_the_request_count() -> None:
    result = parse(CLEAN)
    assert result.requests_per_s == pytest.approx(6779.93)
    assert result.requests == 67812
    assert result.seconds == pytest.approx(10.0)


def test_it_converts_every_latency_unit_to_milliseconds() -> None:
    result = parse(CLEAN)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.latency_ms["p75"] == pytest.approx(7.99)
    assert result.p99_ms == pytest.approx(1020.0)


def test_a_clean_run_has_no_errors() -> None:
    assert parse(CLEAN).errors == 0


def test_it_counts_socket_errors_and_non_2xx_responses() -> None:
    result = parse(FAILING)
    assert result.socket_errors == {"connect": 0, "read": 3, "write": 0, "timeout": 7}
    assert result.non_2xx == 120
    assert result.errors == 130
    assert result.seconds == pytest.approx(1.1)


def test_it_refuses_a_report_without_the_latency_distribution() -> None:
    without = "\n".join(line for line in CLEAN.splitlines() if "%" not in line or "Stdev" in line)
    with pytest.raises(WrkError):
        parse(without)


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 and keeps each request's method, Content-Type and body."""

    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: list[tuple[str, str | None, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append((self.command, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def recorder() -> Iterator[int]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_its_request_script_makes_wrk_post_the_body_with_the_given_headers(recorder: int, tmp_path: Path) -> None:
    body = '{"model":"bench-model","messages":[{"role":"user","content":"Say \\"pong\\"."}]}'
    script = tmp_path / "post.lua"
    script.write_text(request_script("POST", body))
    procs = Processes()
    try:
        result = run(procs, f"http://127.0.0.1:{recorder}/v1/chat/completions", seconds=1, connections=1,
                     headers=("Content-Type: application/json",), script=script)
    finally:
        procs.stop_all()
    assert result.errors == 0 and result.requests > 0
    assert _Recorder.seen[0] == ("POST", "application/json", body.encode())


def test_a_body_that_would_end_the_script_s_string_is_refused() -> None:
    with pytest.raises(WrkError):
        request_script("POST", "x]==]y")
