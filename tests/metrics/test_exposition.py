"""metrics.exposition and /metrics: the Prometheus text format, checked by promtool when it is installed."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

from metrics import exposition
from metrics.procfiles import Combined
from protocols.ai import records
from protocols.ai.decide import Decision
from protocols.ai.providers import LlmClient, ProviderError, ProviderSettings
from protocols.ai.records import DecisionLog
from protocols.recorder import Recorder, Totals
from tests.support.llm_stubs import LlmStub

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
    recorder.grpc_call("echo", 14)
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
        'rusta_grpc_calls_total{route="echo",grpc_status="14"} 1',
        'rusta_build_info{version="1.2.3"} 1',
        "rusta_metrics_workers 2",
    ):
        assert line in text.splitlines(), line


def test_tls_handshake_errors_are_exposed_by_reason_summed_over_workers():
    combined = Combined(workers=2)
    for reasons in (("no_certificate", "protocol_version"), ("no_certificate",)):
        recorder = Recorder()
        for reason in reasons:
            recorder.tls_handshake_failed(reason)
        combined.totals.add(Totals.from_json(recorder.snapshot().as_json()))  # as procfiles carries them
    lines = exposition.render(combined, "1").splitlines()
    assert 'rusta_tls_handshake_errors_total{reason="no_certificate"} 2' in lines
    assert 'rusta_tls_handshake_errors_total{reason="protocol_version"} 1' in lines


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


# --- AI routing's families, from a real decision log and a real LLM client's calls -------------------------------

def llm_client_with_calls() -> LlmClient:
    """A client that made two calls to a fake OpenAI on loopback: one answered (12 tokens in, 3 out), one 500."""

    async def calls() -> LlmClient:
        async with LlmStub() as stub:
            client = LlmClient()
            settings = ProviderSettings("openai", "test-model", stub.api_key, stub.base_url, 5.0)
            stub.usage = (12, 3)
            await client.chat(settings, "You route requests.", "GET /orders")
            stub.fail(500)
            with pytest.raises(ProviderError):
                await client.chat(settings, "You route requests.", "GET /orders")
            await client.aclose()
            return client

    return asyncio.run(calls())


def ai_combined() -> Combined:
    log = DecisionLog()
    log.record("shop", "content_analysis", Decision(0, "model", "confident", 0.0003), "http://10.0.0.5:8080")
    log.record("shop", "content_analysis", Decision(1, "llm", "asked the model", 0.4), "http://10.0.0.6:8080")
    log.record("shop", "content_analysis", Decision(None, "fallback", "budget exceeded", 1.0))
    log.compare("shop", True)
    log.compare("shop", True)
    log.compare("shop", False)
    log.verdict("api", "10.9.9.9", 12.5, ("burst",), "refused")
    combined = Combined(workers=1)
    combined.ai = records.snapshot(logs=[log], clients=[llm_client_with_calls()])
    return combined


def test_ai_routing_families_are_exposed_with_their_labels():
    lines = exposition.render(ai_combined(), "1").splitlines()
    for line in (
        "# TYPE rusta_ai_decisions_total counter",
        'rusta_ai_decisions_total{route="shop",strategy="content_analysis",source="llm"} 1',
        'rusta_ai_decisions_total{route="shop",strategy="content_analysis",source="model"} 1',
        "# TYPE rusta_ai_decision_duration_seconds histogram",
        'rusta_ai_decision_duration_seconds_bucket{route="shop",strategy="content_analysis",le="0.0005"} 1',
        'rusta_ai_decision_duration_seconds_bucket{route="shop",strategy="content_analysis",le="0.5"} 2',
        'rusta_ai_decision_duration_seconds_bucket{route="shop",strategy="content_analysis",le="+Inf"} 3',
        'rusta_ai_decision_duration_seconds_count{route="shop",strategy="content_analysis"} 3',
        'rusta_ai_fallbacks_total{route="shop",strategy="content_analysis",reason="budget exceeded"} 1',
        'rusta_ai_model_agreement_total{route="shop",result="agreed"} 2',
        'rusta_ai_model_agreement_total{route="shop",result="disagreed"} 1',
        'rusta_ai_llm_calls_total{provider="openai",outcome="ok"} 1',
        'rusta_ai_llm_calls_total{provider="openai",outcome="server"} 1',
        'rusta_ai_llm_tokens_total{provider="openai",direction="input"} 12',
        'rusta_ai_llm_tokens_total{provider="openai",direction="output"} 3',
        'rusta_ai_anomalies_total{route="api",action="refused"} 1',
    ):
        assert line in lines, line
    [total] = [line for line in lines if line.startswith("rusta_ai_decision_duration_seconds_sum")]
    assert float(total.rsplit(" ", 1)[1]) == pytest.approx(1.4003)


def test_the_ai_families_pass_promtool():
    needs_promtool()
    result = promtool_check(exposition.render(ai_combined(), "0.1.0"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ai_families_are_declared_before_any_ai_decision():
    text = exposition.render(Combined(), "1")
    assert "# TYPE rusta_ai_decisions_total counter" in text
    assert "rusta_ai_decisions_total{" not in text
