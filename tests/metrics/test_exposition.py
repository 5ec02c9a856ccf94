"""metrics.exposition and /metrics: the Prometheus text format, checked by promtool when it is installed."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from metrics import exposition
from metrics.procfiles import Combined
from protocols.recorder import Recorder

PROMTOOL = shutil.which("promtool")


def needs_promtool() -> None:
    """Skip without promtool, except in CI, where .ci/run installs it and its absence is a failure."""
    if PROMTOOL is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus package for it")
        pytest.skip("promtool is not installed (apt-get install --no-install-recommends prometheus)")


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)


def busy_combined() -> Combined:
    recorder = Recorder()
    recorder.record_request("users", "GET", 200, 0.004, 0.003, 5, 100, "10.0.0.5:8080", None)
    recorder.record_request('we"ird\\route\n', "POST", 504, 2.0, None, 0, 90, "10.0.0.6:8080", "upstream_timeout")
    recorder.upstream_error("10.0.0.6:8080", "upstream_timeout")
    recorder.rate_limited("users")
    recorder.cache_result("users", hit=True)
    recorder.cache_stored("users", 512)
    recorder.connection_opened()
    recorder.take_window()
    combined = Combined(workers=2)
    combined.totals.add(recorder.snapshot())
    combined.breakers[("users", "10.0.0.6:8080")] = 2
    return combined


def test_every_gateway_family_is_exposed_with_its_labels():
    text = exposition.render(busy_combined(), "1.2.3")
    for line in (
        'rusta_requests_total{route="users",method="GET",status_class="2xx"} 1',
        'rusta_request_duration_seconds_bucket{route="users",le="0.005"} 1',
        'rusta_request_duration_seconds_count{route="users"} 1',
        'rusta_upstream_duration_seconds_sum{backend="10.0.0.5:8080"} 0.003',
        'rusta_upstream_errors_total{backend="10.0.0.6:8080",kind="timeout"} 1',
        "rusta_connections_active 1",
        "rusta_connections_peak 1",
        'rusta_circuit_breaker_state{route="users",backend="10.0.0.6:8080"} 2',
        'rusta_rate_limited_total{route="users"} 1',
        'rusta_cache_requests_total{route="users",result="hit"} 1',
        'rusta_cache_stores_total{route="users"} 1',
        'rusta_cache_stored_bytes_total{route="users"} 512',
        'rusta_bytes_total{route="users",direction="out"} 100',
        'rusta_build_info{version="1.2.3"} 1',
        "rusta_metrics_workers 2",
    ):
        assert line in text.splitlines(), line


def test_label_values_are_escaped():
    text = exposition.render(busy_combined(), "1")
    assert 'route="we\\"ird\\\\route\\n"' in text


def test_the_exposition_passes_promtool():
    needs_promtool()
    result = promtool_check(exposition.render(busy_combined(), "0.1.0"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_metrics_view_serves_django_prometheus_and_the_gateway_families(client, db):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "django_http_requests_before_middlewares_total" in text
    assert "# TYPE rusta_requests_total counter" in text
    assert 'rusta_build_info{version="0.1.0"} 1' in text


def test_websocket_tunnels_messages_and_bytes_are_exposed_per_route():
    recorder = Recorder()
    recorder.websocket_source = lambda: [{"route": "chat", "open": 1, "opened": 4, "messages_from_client": 3,
                                          "messages_to_client": 5, "bytes_from_client": 30, "bytes_to_client": 50}]
    combined = Combined(workers=1)
    combined.totals.add(recorder.snapshot())
    lines = exposition.render(combined, "1").splitlines()
    for line in (
        'rusta_websocket_connections_open{route="chat"} 1',
        'rusta_websocket_connections_total{route="chat"} 4',
        'rusta_websocket_messages_total{route="chat",direction="in"} 3',
        'rusta_websocket_messages_total{route="chat",direction="out"} 5',
        'rusta_websocket_bytes_total{route="chat",direction="in"} 30',
        'rusta_websocket_bytes_total{route="chat",direction="out"} 50',
    ):
        assert line in lines, line
