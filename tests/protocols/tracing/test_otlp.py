"""protocols.tracing.otlp: proxied requests arrive as OTLP/JSON spans at a real collector on loopback."""
from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest

from protocols.tracing import traceparent_from
from protocols.tracing.otlp import OtlpExporter
from tests.support.otlp_collector import OtlpCollector
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer, refused_port

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")
SENT = b"00-" + CLIENT_TRACE.encode() + b"-b7ad6b7169203331-01"


def exporter_for(endpoint: str, **env: str) -> OtlpExporter:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "20", **env}
    exporter = OtlpExporter.from_env(environ)
    assert exporter is not None
    exporter.retry_backoff_s = 0.01
    return exporter


@pytest.fixture
def collector():
    with OtlpCollector() as server:
        yield server


@pytest.fixture
def upstream():
    with UpstreamServer() as server:
        yield server


def attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {item["key"]: next(iter(item["value"].values())) for item in span["attributes"]}


def seen_ids(upstream: UpstreamServer, index: int = 0) -> tuple[str, str]:
    (sent,) = upstream.requests[index].header("traceparent")
    trace_id, span_id = TRACEPARENT.match(sent).groups()  # type: ignore[union-attr]
    return trace_id, span_id


def finish(exporter: OtlpExporter, sent: bytes = SENT, client: bytes | None = None, status: int = 200,
           error: str | None = None) -> None:
    exporter.finish("GET", "/api/users/7", "users", status, 1_700_000_000.5, 0.25, sent, client,
                    "10.0.0.5:8080", error, b"req-1")


# --- the export request and the span document --------------------------------------------------------------


def test_spans_are_posted_as_otlp_json_to_the_traces_path_with_the_configured_headers(collector):
    exporter = exporter_for(collector.url, OTEL_EXPORTER_OTLP_HEADERS="api-key=s3cr%3Dt")
    finish(exporter)
    collector.wait_for_spans(1)
    exporter.shutdown()
    (post,) = collector.posts
    assert post.path == "/v1/traces"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["api-key"] == "s3cr=t"
    (resource_spans,) = post.body["resourceSpans"]
    assert resource_spans["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "rusta"}}]
    (scope_spans,) = resource_spans["scopeSpans"]
    assert scope_spans["scope"] == {"name": "rusta"}


def test_a_span_carries_hex_ids_nanosecond_strings_and_the_request_attributes(collector):
    exporter = exporter_for(collector.url)
    finish(exporter, client=CLIENT_TRACEPARENT.encode())
    (span,) = collector.wait_for_spans(1)
    exporter.shutdown()
    assert span["traceId"] == CLIENT_TRACE
    assert span["spanId"] == "b7ad6b7169203331"
    assert span["parentSpanId"] == CLIENT_SPAN
    assert span["name"] == "GET users"
    assert span["kind"] == 2
    assert span["startTimeUnixNano"] == "1700000000500000000"
    assert span["endTimeUnixNano"] == "1700000000750000000"
    assert attributes(span) == {
        "http.request.method": "GET", "url.path": "/api/users/7", "http.response.status_code": "200",
        "http.route": "users", "rusta.backend": "10.0.0.5:8080", "rusta.request_id": "req-1",
    }
    assert "status" not in span


def test_a_failed_request_is_an_error_span_with_its_error_type(collector):
    exporter = exporter_for(collector.url)
    finish(exporter, status=502, error="upstream_connect_refused")
    finish(exporter, status=503)
    refused, unavailable = collector.wait_for_spans(2)
    exporter.shutdown()
    assert refused["status"]["code"] == 2
    assert attributes(refused)["error.type"] == "upstream_connect_refused"
    assert unavailable["status"]["code"] == 2
    assert attributes(unavailable)["error.type"] == "503"


def test_a_span_without_a_valid_client_traceparent_has_no_parent(collector):
    exporter = exporter_for(collector.url)
    finish(exporter, client=None)
    finish(exporter, client=b"garbage")
    spans = collector.wait_for_spans(2)
    exporter.shutdown()
    assert all("parentSpanId" not in span for span in spans)


# --- end to end through ProxyApp ---------------------------------------------------------------------------


def test_the_span_of_a_proxied_request_is_the_hop_the_upstream_saw(collector, upstream):
    exporter = exporter_for(collector.url)
    with ProxyServer([route("api", "/api", upstream.port)], spans=exporter) as proxy:
        assert proxy.call("GET", "/api", [("traceparent", CLIENT_TRACEPARENT)]).status == 200
        (span,) = collector.wait_for_spans(1)
    exporter.shutdown()
    trace_id, parent_id = seen_ids(upstream)
    assert span["traceId"] == trace_id == CLIENT_TRACE
    assert span["spanId"] == parent_id
    assert span["parentSpanId"] == CLIENT_SPAN
    assert attributes(span)["http.response.status_code"] == "200"
    assert attributes(span)["http.route"] == "api"
    assert attributes(span)["rusta.backend"] == f"127.0.0.1:{upstream.port}"


def test_a_request_without_traceparent_exports_a_root_span_of_the_new_trace(collector, upstream):
    exporter = exporter_for(collector.url)
    with ProxyServer([route("api", "/api", upstream.port)], spans=exporter) as proxy:
        reply = proxy.call("POST", "/api", body=b"hi")
        (span,) = collector.wait_for_spans(1)
    exporter.shutdown()
    trace_id, parent_id = seen_ids(upstream)
    assert (span["traceId"], span["spanId"]) == (trace_id, parent_id)
    assert "parentSpanId" not in span
    assert attributes(span)["rusta.request_id"] == reply.header("x-request-id")[0]


def test_an_unsampled_client_trace_exports_no_span(collector, upstream):
    exporter = exporter_for(collector.url)
    with ProxyServer([route("api", "/api", upstream.port)], spans=exporter) as proxy:
        assert proxy.call("GET", "/api", [("traceparent", CLIENT_TRACEPARENT[:-2] + "00")]).status == 200
        assert proxy.call("GET", "/api", [("traceparent", CLIENT_TRACEPARENT)]).status == 200
    exporter.shutdown()
    (span,) = collector.spans()
    assert span["spanId"] == seen_ids(upstream, 1)[1]


def test_a_trace_the_sampler_drops_goes_upstream_unsampled_and_exports_nothing(collector, upstream):
    exporter = exporter_for(collector.url, OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0")
    with ProxyServer([route("api", "/api", upstream.port)], spans=exporter) as proxy:
        assert proxy.call("GET", "/api").status == 200
    exporter.shutdown()
    assert upstream.requests[-1].header("traceparent")[0].endswith("-00")
    assert collector.spans() == []


def test_a_refused_backend_exports_an_error_span(collector):
    exporter = exporter_for(collector.url)
    with ProxyServer([route("down", "/down", refused_port())], spans=exporter) as proxy:
        assert proxy.call("POST", "/down", body=b"x").status == 502
        (span,) = collector.wait_for_spans(1)
    exporter.shutdown()
    assert span["status"]["code"] == 2
    assert attributes(span)["error.type"] == "upstream_connect_refused"
    assert attributes(span)["http.response.status_code"] == "502"


def test_requests_that_reach_no_route_export_nothing(collector):
    exporter = exporter_for(collector.url)
    with ProxyServer([], spans=exporter) as proxy:
        assert proxy.call("GET", "/nowhere").status == 404
    exporter.shutdown()
    assert collector.posts == []


def test_requests_still_succeed_when_the_collector_is_down(upstream, caplog):
    exporter = exporter_for(f"http://127.0.0.1:{refused_port()}")
    with caplog.at_level(logging.WARNING, "protocols.tracing.otlp"), \
            ProxyServer([route("api", "/api", upstream.port)], spans=exporter) as proxy:
        for _ in range(3):
            assert proxy.call("GET", "/api").status == 200
        exporter.shutdown()
    assert exporter.failed == 3 and exporter.exported == 0
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failures and "ConnectError" in failures[0].getMessage()


def test_a_batch_refused_with_503_is_retried_and_arrives_once(collector, upstream):
    exporter = exporter_for(collector.url)
    collector.fail(503, times=1)
    with ProxyServer([route("api", "/api", upstream.port)], spans=exporter) as proxy:
        assert proxy.call("GET", "/api").status == 200
        collector.wait_for_spans(1)
    exporter.shutdown()
    assert len(collector.refused) == 1
    assert len(collector.spans()) == 1
    assert (exporter.exported, exporter.failed) == (1, 0)


def test_a_batch_refused_with_400_is_not_retried(collector):
    exporter = exporter_for(collector.url)
    collector.fail(400, times=1)
    finish(exporter)
    exporter.shutdown()
    assert len(collector.refused) == 1 and collector.posts == []
    assert exporter.failed == 1


def test_a_collector_that_keeps_failing_gets_three_attempts(collector):
    exporter = exporter_for(collector.url)
    collector.fail(429, times=5)
    finish(exporter)
    exporter.shutdown()
    assert len(collector.refused) == 3 and exporter.failed == 1


# --- batching, the queue, shutdown -------------------------------------------------------------------------


def test_shutdown_flushes_the_spans_still_queued(collector):
    exporter = exporter_for(collector.url, OTEL_BSP_SCHEDULE_DELAY="60000")
    for _ in range(3):
        finish(exporter)
    assert collector.posts == []  # waiting for the schedule delay
    exporter.shutdown()
    assert len(collector.spans()) == 3


def test_a_full_batch_is_sent_without_waiting_for_the_schedule_delay(collector):
    exporter = exporter_for(collector.url, OTEL_BSP_SCHEDULE_DELAY="60000", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2")
    for _ in range(5):
        finish(exporter)
    collector.wait_for_spans(4)  # long before the 60 s delay
    exporter.shutdown()
    sizes = [len(post.body["resourceSpans"][0]["scopeSpans"][0]["spans"]) for post in collector.posts]
    assert sum(sizes) == 5 and max(sizes) == 2


def test_a_full_queue_drops_spans_and_counts_them_while_the_collector_is_slow(collector, caplog):
    exporter = exporter_for(collector.url, OTEL_BSP_MAX_QUEUE_SIZE="3", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="3")
    collector.hold()
    with caplog.at_level(logging.WARNING, "protocols.tracing.otlp"):
        finish(exporter)
        assert collector.arrived.wait(5)  # the export thread now waits for the collector's answer
        for _ in range(5):
            finish(exporter)
        collector.release()
        exporter.shutdown()
    assert exporter.dropped == 2
    assert len(collector.spans()) == 4
    assert any("2 span(s) dropped" in r.getMessage() for r in caplog.records)


def test_spans_finished_after_shutdown_are_ignored(collector):
    exporter = exporter_for(collector.url)
    exporter.shutdown()
    finish(exporter)
    assert exporter._thread is None and collector.posts == []


def test_export_failures_are_logged_at_most_once_a_minute(caplog):
    exporter = exporter_for(f"http://127.0.0.1:{refused_port()}", OTEL_BSP_SCHEDULE_DELAY="60000")
    now = [1000.0]
    exporter.clock = lambda: now[0]
    exporter.sleep = lambda seconds: None
    with caplog.at_level(logging.WARNING, "protocols.tracing.otlp"), httpx.Client() as client:
        for minute_later in (0, 10, 59, 61):
            now[0] = 1000.0 + minute_later
            finish(exporter)
            exporter.export_queued(client)
            exporter._report()
    exporter.shutdown()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "1 span(s) lost" in messages[0]
    assert "3 span(s) lost" in messages[1]  # the ones at 10 s, 59 s and 61 s


# --- sampling ----------------------------------------------------------------------------------------------


def sampled_count(collector: OtlpCollector, sampler: str, arg: str = "", **clients: bytes | None) -> int:
    """Spans exported for requests with these client traceparents (None: a new trace), each sent upstream with
    the flag the sampler decided, as the proxy does."""
    exporter = exporter_for(collector.url, OTEL_TRACES_SAMPLER=sampler, OTEL_TRACES_SAMPLER_ARG=arg)
    for client in clients.values():
        sent, _ = traceparent_from(client, exporter.decide)
        finish(exporter, sent=sent, client=client)
    exporter.shutdown()
    return len(collector.spans())


UNSAMPLED = CLIENT_TRACEPARENT[:-2].encode() + b"00"
LOW_TRACE = b"00-" + b"f" * 16 + b"0" * 15 + b"1-b7ad6b7169203331-01"  # low 64 bits near 0: kept by any ratio > 0


def decided_flag(sampler: str, client: bytes | None, arg: str = "") -> bytes:
    exporter = exporter_for("http://127.0.0.1:9", OTEL_TRACES_SAMPLER=sampler, OTEL_TRACES_SAMPLER_ARG=arg)
    return traceparent_from(client, exporter.decide)[0][-2:]


def test_always_on_exports_even_unsampled_traces(collector):
    assert sampled_count(collector, "always_on", unsampled=UNSAMPLED, root=None) == 2


def test_parentbased_always_off_exports_only_sampled_continued_traces(collector):
    assert sampled_count(collector, "parentbased_always_off", root=None, unsampled=UNSAMPLED,
                         sampled=CLIENT_TRACEPARENT.encode()) == 1


def test_traceidratio_zero_exports_nothing_and_a_ratio_keeps_low_trace_ids(collector):
    assert sampled_count(collector, "traceidratio", "0", low=LOW_TRACE, root=None) == 0
    assert sampled_count(collector, "traceidratio", "0.5", low=LOW_TRACE) == 1


def test_the_flag_sent_upstream_is_the_samplers_decision():
    # Backends that sample by their parent then keep exactly the traces the gateway exports.
    assert decided_flag("traceidratio", LOW_TRACE, "0") == b"00"
    assert decided_flag("traceidratio", None, "1") == b"01"
    assert decided_flag("always_on", UNSAMPLED) == b"01"
    assert decided_flag("parentbased_always_on", UNSAMPLED) == b"00"
    assert decided_flag("parentbased_always_off", None) == b"00"
    assert decided_flag("parentbased_traceidratio", CLIENT_TRACEPARENT.encode(), "0") == b"01"


def test_always_off_turns_the_exporter_off(collector):
    assert OtlpExporter.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                                  "OTEL_TRACES_SAMPLER": "always_off"}) is None
