"""Live configuration: changes reach running `runproxy` processes in time, without failing requests."""
from __future__ import annotations

import threading
import time

import pytest

from routes.models import ConfigState, Route
from routes.services import save_route
from tests.support.gateway import http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)


def route_to(upstream: UpstreamServer, name: str = "echo", path: str = "/echo", **extra) -> Route:
    doc = {
        "name": name,
        "external_path": path,
        "internal_path": "",
        "methods": ["GET", "POST"],
        "backends": [{"host": "http://127.0.0.1", "port": upstream.port}],
        **extra,
    }
    return save_route(doc, actor=None, source="test")


def test_a_new_route_is_served_within_two_seconds_by_every_worker(tmp_path):
    with UpstreamServer() as upstream:
        gateway = start_gateway(tmp_path, workers=2)
        try:
            assert http("GET", gateway.url + "/echo")[0] == 404
            route_to(upstream)
            saved_at = time.monotonic()
            while http("GET", gateway.url + "/echo")[0] != 200:
                assert time.monotonic() - saved_at < 2.0, "the new route was not served within 2 s"
                time.sleep(0.02)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - saved_at)))
            # By now both workers have it: every one of many requests succeeds.
            assert {http("GET", gateway.url + "/echo")[0] for _ in range(40)} == {200}
        finally:
            assert gateway.stop() == 0


def test_changing_a_backend_under_load_fails_no_request(tmp_path):
    with UpstreamServer() as first, UpstreamServer() as second:
        route = route_to(first)
        gateway = start_gateway(tmp_path, workers=2)
        results: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                results.append(http("GET", gateway.url + "/echo", timeout=5)[0])

        threads = [threading.Thread(target=load) for _ in range(4)]
        try:
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            save_route({"backends": [{"host": "http://127.0.0.1", "port": second.port}]},
                       actor=None, source="test", route=route, partial=True)
            changed_at = time.monotonic()
            assert second.wait_until(lambda s: len(s.requests) > 0, timeout=2.0), "change not served within 2 s"
            switch_seconds = time.monotonic() - changed_at
            time.sleep(2.0)
            stop.set()
            for thread in threads:
                thread.join()
            # Once the change settled, every worker sends to the new backend only.
            seen_by_first = len(first.requests)
            assert {http("GET", gateway.url + "/echo")[0] for _ in range(20)} == {200}
            assert len(first.requests) == seen_by_first
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            assert gateway.stop() == 0
        assert switch_seconds < 2.0
        assert len(results) > 50
        assert set(results) == {200}, f"failed requests during the change: {[s for s in results if s != 200]}"


def test_two_runproxy_processes_on_one_database_both_serve_a_change(tmp_path):
    with UpstreamServer() as upstream:
        (tmp_path / "one").mkdir()
        (tmp_path / "two").mkdir()
        one = start_gateway(tmp_path / "one")
        two = start_gateway(tmp_path / "two")
        try:
            route_to(upstream, path="/shared")
            version = ConfigState.objects.get(pk=1).version
            assert one.wait_version(version, timeout=2.0) < 2.0
            assert two.wait_version(version, timeout=2.0) < 2.0
            assert http("GET", one.url + "/shared")[0] == 200
            assert http("GET", two.url + "/shared")[0] == 200
        finally:
            assert one.stop() == 0
            assert two.stop() == 0


def test_a_row_that_cannot_compile_is_left_out_and_the_rest_keeps_serving(tmp_path):
    with UpstreamServer() as upstream:
        route_to(upstream, name="good", path="/good")
        bad = route_to(upstream, name="bad", path="/bad")
        # A row written behind the service layer's back (a manual SQL edit) must not take the gateway down.
        Route.objects.filter(pk=bad.pk).update(external_path="/bad/{unclosed")
        gateway = start_gateway(tmp_path)
        try:
            assert http("GET", gateway.url + "/good")[0] == 200
            assert http("GET", gateway.url + "/bad")[0] == 404
            assert http("GET", gateway.url + "/ready")[0] == 200
            assert "left out of the table" in gateway.log()
        finally:
            assert gateway.stop() == 0


def test_every_proxied_request_writes_one_json_access_line(tmp_path):
    with UpstreamServer() as upstream:
        route_to(upstream)
        gateway = start_gateway(tmp_path)
        try:
            http("GET", gateway.url + "/echo?x=1", headers={"X-Request-ID": "trace-me-1"})
            http("GET", gateway.url + "/nowhere")
        finally:
            assert gateway.stop() == 0
        lines = {line["request_id"]: line for line in gateway.access_lines()}
        line = lines["trace-me-1"]
        assert line["method"] == "GET"
        assert line["route"] == "echo"
        assert line["status"] == 200
        assert line["backend"] == f"127.0.0.1:{upstream.port}"
        for key in ("time", "path", "duration_ms", "bytes_in", "bytes_out"):
            assert key in line
        assert any(entry["status"] == 404 and entry["route"] is None for entry in lines.values())
