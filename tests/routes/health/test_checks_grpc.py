"""routes.health.checks on grpc routes: backends are probed with gRPC's health check (the service their
health_check_path names), over TLS with their own `tls` options; and https backends of http routes get theirs too."""
from __future__ import annotations

import ssl
from datetime import UTC, datetime

import pytest
import trustme

from routes.health.checks import probe_due_backends
from routes.health.models import BackendHealth, HealthProbe
from routes.models import Route
from routes.services import save_route
from tests.support.grpc_backend import GrpcBackend
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CHECK = {"interval_s": 1, "timeout_ms": 5000, "healthy_threshold": 1, "unhealthy_threshold": 1}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def grpc_route(*backends: dict) -> Route:
    return save_route({"name": "greeter", "protocol": "grpc", "external_path": "/test.Echo/{method}",
                       "health_check": CHECK, "backends": list(backends)}, actor=None, source="test")


def verdicts(route: Route) -> list[tuple[str, str]]:
    rows = BackendHealth.objects.filter(backend__route=route).order_by("backend__position")
    return [(h.state, h.reason) for h in rows]


def test_grpc_backends_are_judged_by_their_serving_status():
    with GrpcBackend("up", health={"": 1}) as up, GrpcBackend("down", health={"": 2}) as down, \
            GrpcBackend("bare") as bare:
        route = grpc_route(*({"host": "http://127.0.0.1", "port": b.port, "health_check_path": "/"}
                             for b in (up, down, bare)))
        probe_due_backends(now=T0)
    assert verdicts(route) == [("healthy", "grpc_serving"), ("unhealthy", "grpc_not_serving"),
                               ("unhealthy", "grpc_status_12")]
    assert set(HealthProbe.objects.values_list("status_code", flat=True)) == {1, 2, 12}


def test_the_health_check_path_names_the_service_asked_about():
    with GrpcBackend(health={"": 2, "test.Echo": 1}) as backend:
        route = grpc_route({"host": "http://127.0.0.1", "port": backend.port, "health_check_path": "/test.Echo"})
        probe_due_backends(now=T0)
    assert (verdicts(route), backend.health_requests) == ([("healthy", "grpc_serving")], ["test.Echo"])


def test_a_tls_grpc_backend_is_probed_with_its_own_ca_and_server_name(ca):
    with GrpcBackend(tls=ca, health={"": 1}) as backend:
        route = grpc_route({"host": "https://127.0.0.1", "port": backend.port, "health_check_path": "/",
                            "tls": {"ca": ca.cert_pem.bytes().decode(), "server_name": "localhost"}})
        probe_due_backends(now=T0)
    assert verdicts(route) == [("healthy", "grpc_serving")]


def test_an_https_backend_of_an_http_route_is_probed_with_its_own_ca(ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with UpstreamServer(ssl_context=context) as upstream:
        route = save_route({"name": "secure", "external_path": "/secure", "methods": ["GET"], "health_check": CHECK,
                            "backends": [{"host": "https://127.0.0.1", "port": upstream.port,
                                          "health_check_path": "/health",
                                          "tls": {"ca": ca.cert_pem.bytes().decode()}}]},
                           actor=None, source="test")
        probe_due_backends(now=T0)
    assert verdicts(route) == [("healthy", "status 200")]
