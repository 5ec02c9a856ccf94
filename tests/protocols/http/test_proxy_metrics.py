"""ProxyApp reports every proxied request to its metrics recorder, and continues or starts the W3C trace."""
from __future__ import annotations

import io
import json
import re
from dataclasses import replace

from protocols.http import AccessLog
from protocols.recorder import NullRecorder, Recorder
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer, refused_port

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")


def test_a_proxied_request_is_recorded_with_its_route_backend_and_upstream_time():
    recorder = Recorder()
    with UpstreamServer() as upstream, ProxyServer([route("api", "/api", upstream.port)], recorder=recorder) as proxy:
        reply = proxy.call("POST", "/api", body=b"hello")
    assert reply.status == 200
    window = recorder.take_window()
    ((key, cell),) = window.items()
    assert key == ("api", "POST", 200, f"127.0.0.1:{upstream.port}", "")
    assert cell[0] == 1  # one request
    assert cell[6] == 5 and cell[7] == len(reply.body)  # bytes in, bytes out
    assert cell[3] == 1 and 0 < cell[2] <= cell[1]  # an upstream time, within the whole duration
    assert recorder.active == 0 and recorder.peak == 1


def test_a_request_is_counted_once():
    recorder = Recorder()
    with UpstreamServer() as upstream, ProxyServer([route("api", "/api", upstream.port)], recorder=recorder) as proxy:
        for _ in range(3):
            proxy.call("GET", "/api")
    recorder.take_window()
    assert recorder.totals.requests == {("api", "GET", "2xx"): 3}


def test_a_refused_backend_is_recorded_as_an_upstream_error_and_a_502():
    # Each failed attempt counts (a retried GET would count twice).
    recorder = Recorder()
    port = refused_port()
    with ProxyServer([route("down", "/down", port)], recorder=recorder) as proxy:
        assert proxy.call("POST", "/down", body=b"x").status == 502  # POST: one attempt, no retry
    window = recorder.take_window()
    assert list(window) == [("down", "POST", 502, f"127.0.0.1:{port}", "upstream_connect_refused")]
    assert recorder.totals.upstream_errors == {(f"127.0.0.1:{port}", "refused"): 1}


def test_a_backend_host_that_does_not_resolve_is_counted_as_a_dns_upstream_error():
    recorder = Recorder()
    spec = route("typo", "/typo", 8080)
    spec = replace(spec, backends=(replace(spec.backends[0], host="nothing.invalid"),))
    with ProxyServer([spec], recorder=recorder) as proxy:
        assert proxy.call("POST", "/typo", body=b"x").status == 502
    window = recorder.take_window()
    assert list(window) == [("typo", "POST", 502, "nothing.invalid:8080", "upstream_name_not_resolved")]
    assert recorder.totals.upstream_errors == {("nothing.invalid:8080", "dns"): 1}


def test_requests_without_a_route_are_recorded_without_one_and_health_checks_not_at_all():
    recorder = Recorder()
    with ProxyServer([], recorder=recorder) as proxy:
        assert proxy.call("GET", "/nowhere").status == 404
        assert proxy.call("GET", "/live").status == 200
    assert list(recorder.take_window()) == [("", "GET", 404, "", "route_not_found")]


def test_the_null_recorder_records_nothing():
    recorder = NullRecorder()
    with UpstreamServer() as upstream, ProxyServer([route("api", "/api", upstream.port)], recorder=recorder) as proxy:
        assert proxy.call("GET", "/api").status == 200
    assert recorder.take_window() == {} and recorder.peak == 0


def test_the_backend_gets_the_clients_trace_with_the_gateways_own_span():
    with UpstreamServer() as upstream, ProxyServer([route("api", "/api", upstream.port)]) as proxy:
        proxy.call("GET", "/api", [("traceparent", CLIENT_TRACEPARENT)])
    (sent,) = upstream.requests[0].header("traceparent")
    trace_id, span_id = TRACEPARENT.match(sent).groups()  # type: ignore[union-attr]
    assert trace_id == CLIENT_TRACE
    assert span_id != "00f067aa0ba902b7"
    assert sent.endswith("-01")


def test_a_request_without_a_valid_traceparent_starts_a_trace_and_sends_one_field():
    with UpstreamServer() as upstream, ProxyServer([route("api", "/api", upstream.port)]) as proxy:
        proxy.call("GET", "/api", [("traceparent", "garbage"), ("traceparent", CLIENT_TRACEPARENT)])
        proxy.call("GET", "/api")
    for seen in upstream.requests:
        (sent,) = seen.header("traceparent")
        trace_id = TRACEPARENT.match(sent).group(1)  # type: ignore[union-attr]
        assert trace_id != CLIENT_TRACE


def test_the_access_log_line_names_the_trace_sent_upstream():
    stream = io.StringIO()
    with UpstreamServer() as upstream, ProxyServer([route("api", "/api", upstream.port)],
                                                   access_log=AccessLog(stream)) as proxy:
        proxy.call("GET", "/api", [("traceparent", CLIENT_TRACEPARENT)])
        proxy.call("GET", "/missing")
    found, missing = (json.loads(line) for line in stream.getvalue().splitlines())
    assert found["trace_id"] == CLIENT_TRACE
    assert "trace_id" not in missing  # it never reached a route: nothing went upstream
