"""The access log: one JSON line per request, written in batches, complete at shutdown."""
from __future__ import annotations

import asyncio
import io
import json

from protocols.http import AccessLog
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer

KEYS = {"time", "request_id", "method", "path", "route", "backend", "status", "duration_ms", "bytes_in",
        "bytes_out", "client", "consumer"}


def record(log: AccessLog, **overrides: object) -> None:
    entry = dict(started=1795000000.25, request_id='id "1"', method="GET", path="/a\\b", route=None,
                 backend=None, status=404, duration=0.0012345, bytes_in=0, bytes_out=10, client="10.0.0.1")
    entry.update(overrides)
    log.record(**entry)  # type: ignore[arg-type]


def test_it_writes_one_json_line_with_every_key():
    stream = io.StringIO()
    log = AccessLog(stream)
    record(log)
    log.flush()
    line = json.loads(stream.getvalue())
    assert set(line) == KEYS
    assert line["time"] == "2026-11-18T11:06:40.250Z"
    assert (line["request_id"], line["path"], line["route"], line["duration_ms"]) == ('id "1"', "/a\\b", None,
                                                                                        1.234)


def test_it_names_the_gateway_error_when_there_was_one():
    stream = io.StringIO()
    log = AccessLog(stream)
    record(log, status=502, error="upstream_reset")
    log.flush()
    assert json.loads(stream.getvalue())["error"] == "upstream_reset"


def test_a_grpc_calls_line_has_the_status_its_client_got():
    stream = io.StringIO()
    log = AccessLog(stream)
    record(log, status=200, grpc_status=14, error="no_backend")
    record(log, status=200)
    log.flush()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["status"], first["grpc_status"], first["error"]) == (200, 14, "no_backend")
    assert "grpc_status" not in second


def test_it_holds_lines_until_the_batch_is_written():
    class Stream(io.StringIO):
        def flush(self) -> None:
            super().flush()
            written.set()

    stream = Stream()
    written = asyncio.Event()

    async def scenario() -> str:
        log = AccessLog(stream, interval=0.01)
        record(log)
        before = stream.getvalue()
        await asyncio.wait_for(written.wait(), 5)
        return before

    assert asyncio.run(scenario()) == ""
    assert stream.getvalue().count("\n") == 1


def test_it_writes_at_once_when_the_batch_is_full():
    stream = io.StringIO()
    log = AccessLog(stream, max_pending=3)
    for _ in range(3):
        record(log)
    assert stream.getvalue().count("\n") == 3


def test_the_proxy_logs_each_request_and_flushes_at_shutdown():
    stream = io.StringIO()
    with UpstreamServer() as upstream:
        with ProxyServer([route("api", "/api/{x}", upstream.port)], access_log=AccessLog(stream)) as proxy:
            proxy.call("POST", "/api/echo?token=secret", [("X-Request-ID", "r-1")], body=b"12345")
            proxy.call("GET", "/missing")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == "r-1"
    assert (first["route"], first["backend"], first["status"]) == ("api", f"127.0.0.1:{upstream.port}", 200)
    assert (first["path"], first["bytes_in"], first["client"]) == ("/api/echo", 5, "127.0.0.1")
    assert first["bytes_out"] > 0
    assert (second["route"], second["backend"], second["status"]) == (None, None, 404)
