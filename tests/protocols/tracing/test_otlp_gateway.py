"""OTLP export in the real gateway: `manage.py runproxy` with OTEL_EXPORTER_OTLP_ENDPOINT sends its spans."""
from __future__ import annotations

import re

import pytest

from routes.services import save_route
from tests.support.gateway import http, start_gateway
from tests.support.otlp_collector import OtlpCollector
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


def test_a_request_through_the_gateway_arrives_at_the_collector_as_a_span(tmp_path):
    with OtlpCollector() as collector, UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        gateway = start_gateway(tmp_path, extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "edge-gateway",
        })
        try:
            gateway.wait_version(1)
            status, _, _ = http("GET", gateway.url + "/echo", headers={"traceparent": CLIENT_TRACEPARENT})
            assert status == 200
            (span,) = collector.wait_for_spans(1, timeout=5)
        finally:
            assert gateway.stop() == 0
    (sent,) = upstream.requests[0].header("traceparent")
    trace_id, span_id = re.fullmatch(r"00-(\w{32})-(\w{16})-01", sent).groups()  # type: ignore[union-attr]
    assert (span["traceId"], span["spanId"], span["parentSpanId"]) == (trace_id, span_id, "00f067aa0ba902b7")
    assert span["traceId"] == CLIENT_TRACE
    assert {"key": "http.route", "value": {"stringValue": "echo"}} in span["attributes"]
    (resource,) = collector.resources()
    assert {"key": "service.name", "value": {"stringValue": "edge-gateway"}} in resource["attributes"]


def test_spans_still_queued_at_shutdown_are_flushed(tmp_path):
    with OtlpCollector() as collector, UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        gateway = start_gateway(tmp_path, extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # never on schedule: only the shutdown flush can send it
        })
        try:
            gateway.wait_version(1)
            assert http("GET", gateway.url + "/echo")[0] == 200
        finally:
            assert gateway.stop() == 0
        assert len(collector.spans()) == 1


def test_a_bad_otel_value_stops_the_gateway_naming_the_variable(tmp_path):
    gateway = start_gateway(tmp_path, wait=False, extra_env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_BSP_SCHEDULE_DELAY": "soon",
    })
    try:
        code = gateway.process.wait(120)
    finally:
        gateway.stop()
    assert code != 0
    assert "OTEL_BSP_SCHEDULE_DELAY must be a number of milliseconds" in gateway.log()
