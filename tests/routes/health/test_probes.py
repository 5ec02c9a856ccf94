"""routes.health.probes: one HTTP probe per backend, judged by its status line, or gRPC's health check; failures
named by their cause."""
from __future__ import annotations

import time

import httpx
import pytest
import trustme

from routes.health.probes import ProbeOutcome, ProbeTarget, TlsOptions, classify_error, run_probes
from tests.support.grpc_backend import GrpcBackend
from tests.support.upstream import UpstreamServer, refused_port


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


def probe_one(url: str, timeout: float = 2.0, statuses: frozenset[int] | None = None):
    return run_probes([ProbeTarget(1, url, timeout, statuses)])[0]


def test_a_2xx_answer_is_healthy_with_its_latency(upstream):
    outcome = probe_one(f"http://127.0.0.1:{upstream.port}/healthz")
    assert (outcome.ok, outcome.reason, outcome.status_code, outcome.text) == (True, "status", 200, "status 200")
    assert 0 < outcome.latency_ms < 2000


def test_a_503_answer_is_a_failure_named_by_its_status(upstream):
    outcome = probe_one(f"http://127.0.0.1:{upstream.port}/status/503")
    assert (outcome.ok, outcome.text) == (False, "status 503")


def test_a_3xx_answer_counts_as_healthy_by_default(upstream):
    assert probe_one(f"http://127.0.0.1:{upstream.port}/status/302").ok is True


def test_configured_healthy_statuses_replace_the_default(upstream):
    url = f"http://127.0.0.1:{upstream.port}/status/204"
    assert probe_one(url, statuses=frozenset({200})).ok is False
    assert probe_one(url, statuses=frozenset({204})).ok is True


def test_a_refused_connection_is_named_refused():
    outcome = probe_one(f"http://127.0.0.1:{refused_port()}/health")
    assert (outcome.ok, outcome.reason) == (False, "refused")


def test_a_backend_that_never_answers_times_out_within_the_timeout(upstream):
    started = time.monotonic()
    outcome = probe_one(f"http://127.0.0.1:{upstream.port}/hang", timeout=0.3)
    assert (outcome.ok, outcome.reason) == (False, "timeout")
    assert time.monotonic() - started < 1.5


def test_a_reset_connection_is_named_reset(upstream):
    assert probe_one(f"http://127.0.0.1:{upstream.port}/reset").reason == "reset"


def test_an_answer_that_is_not_http_is_named_invalid(upstream):
    assert probe_one(f"http://127.0.0.1:{upstream.port}/garbage").reason == "invalid"


def test_probes_run_concurrently(upstream):
    targets = [ProbeTarget(i, f"http://127.0.0.1:{upstream.port}/hang", 0.5) for i in range(8)]
    started = time.monotonic()
    outcomes = run_probes(targets)
    assert [o.backend_id for o in outcomes] == list(range(8))
    assert {o.reason for o in outcomes} == {"timeout"}
    assert time.monotonic() - started < 2.0  # eight probes of 0.5 s each, at once


def test_an_injected_transport_replaces_the_network():
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    outcome = run_probes([ProbeTarget(7, "http://backend.invalid/health", 1.0)], transport=transport)[0]
    assert (outcome.backend_id, outcome.text) == (7, "status 500")


def test_an_unexpected_error_keeps_its_message():
    assert classify_error(httpx.UnsupportedProtocol("no ftp here")) == ("error", "no ftp here")


# gRPC's health check (grpc.health.v1.Health/Check) against real grpcio servers.

@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def grpc_probe(port: int, service: str = "", scheme: str = "http", tls: TlsOptions | None = None) -> ProbeOutcome:
    url = f"{scheme}://127.0.0.1:{port}/grpc.health.v1.Health/Check"
    return run_probes([ProbeTarget(1, url, 5.0, grpc_service=service, tls=tls or TlsOptions())])[0]


def test_a_grpc_backend_serving_is_healthy():
    with GrpcBackend(health={"": 1}) as backend:
        outcome = grpc_probe(backend.port)
    assert (outcome.ok, outcome.text) == (True, "grpc_serving")
    assert backend.health_requests == [""]


def test_a_grpc_backend_not_serving_is_unhealthy():
    with GrpcBackend(health={"": 2}) as backend:
        outcome = grpc_probe(backend.port)
    assert (outcome.ok, outcome.text, outcome.detail) == (False, "grpc_not_serving", "NOT_SERVING")


def test_the_probe_asks_about_the_named_service():
    with GrpcBackend(health={"": 2, "test.Echo": 1}) as backend:
        outcome = grpc_probe(backend.port, service="test.Echo")
    assert (outcome.ok, backend.health_requests) == (True, ["test.Echo"])


def test_a_grpc_backend_without_the_health_service_is_unhealthy_with_the_status_named():
    with GrpcBackend() as backend:
        outcome = grpc_probe(backend.port)
    assert (outcome.ok, outcome.text, outcome.status_code) == (False, "grpc_status_12", 12)


def test_a_grpc_probe_of_nothing_listening_is_refused():
    outcome = grpc_probe(refused_port())
    assert (outcome.ok, outcome.reason) == (False, "refused")


def test_a_tls_grpc_backend_with_its_own_ca_is_healthy(ca):
    with GrpcBackend(tls=ca, health={"": 1}) as backend:
        outcome = grpc_probe(backend.port, scheme="https",
                             tls=TlsOptions(ca=ca.cert_pem.bytes().decode(), server_name="localhost"))
    assert (outcome.ok, outcome.text) == (True, "grpc_serving")


def test_a_tls_grpc_backend_whose_ca_is_not_trusted_is_unhealthy(ca):
    with GrpcBackend(tls=ca, health={"": 1}) as backend:
        outcome = grpc_probe(backend.port, scheme="https")
    assert (outcome.ok, outcome.reason) == (False, "error")
    assert "certificate" in outcome.detail.lower()
