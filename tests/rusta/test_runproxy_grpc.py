"""gRPC routes on a real `runproxy`, configured through import_config like an operator: a grpcio client calls
through the gateway to grpcio servers (cleartext and TLS), the gateway's refusals arrive as gRPC statuses, and
/metrics and the access log show every call."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import trustme

from routes.health.checks import probe_due_backends
from routes.import_export import import_config
from tests.protocols.auth.tokens import ISSUER, SECRET, claims, with_pyjwt
from tests.support.gateway import Gateway, http, serving_gateway
from tests.support.grpc_backend import GrpcBackend
from tests.support.upstream import refused_port

pytestmark = pytest.mark.django_db(transaction=True)


def grpc_route(name: str, path: str, backends: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "external_path": path, "methods": ["POST"], "protocol": "grpc", "backends": backends,
            **extra}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def gateway(tmp_path, ca: trustme.CA) -> Iterator[tuple[Gateway, GrpcBackend, GrpcBackend, GrpcBackend]]:
    with GrpcBackend("a") as first, GrpcBackend("b") as second, GrpcBackend("secure", tls=ca) as secure:
        import_config({"version": 1, "jwt": {"secret": SECRET, "issuer": ISSUER}, "routers": [
            grpc_route("echo", "/test.Echo/{method}", [{"host": "http://127.0.0.1", "port": first.port},
                                                        {"host": "http://127.0.0.1", "port": second.port}]),
            grpc_route("secure", "/secure.Echo/{method}", [{
                "host": "https://127.0.0.1", "port": secure.port,
                "tls": {"ca": ca.cert_pem.bytes().decode(), "server_name": "localhost"}}],
                internal_path="/test.Echo/{method}"),
            grpc_route("private", "/private.Echo/{method}", [{"host": "http://127.0.0.1", "port": first.port}],
                       auth_required=True, internal_path="/test.Echo/{method}"),
            grpc_route("limited", "/limited.Echo/{method}", [{"host": "http://127.0.0.1", "port": first.port}],
                       rate_limit={"limit": 1, "window_s": 60}, internal_path="/test.Echo/{method}"),
            grpc_route("down", "/down.Echo/{method}", [{"host": "http://127.0.0.1", "port": refused_port()}]),
        ]}, actor=None, source="test")
        with serving_gateway(tmp_path) as running:
            yield running, first, second, secure


def code_of(ch: grpc.Channel, path: str, **kwargs: Any) -> grpc.StatusCode:
    try:
        ch.unary_unary(path)(b"x", timeout=10, **kwargs)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_calls_of_every_kind_pass_through_runproxy_and_are_balanced(gateway):
    running, *_ = gateway
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        names = sorted(ch.unary_unary("/test.Echo/Whoami")(b"", timeout=10) for _ in range(4))
        stream = [m.split(b":")[1] for m in ch.unary_stream("/test.Echo/ServerStream")(b"3", timeout=10)]
        joined = ch.stream_unary("/test.Echo/ClientStream")(iter([b"a", b"b"]), timeout=10).split(b":")[1]
        echoed = [m.split(b":")[1] for m in ch.stream_stream("/test.Echo/Bidi")(iter([b"x", b"y"]), timeout=10)]
        answer, call = ch.unary_unary("/secure.Echo/Unary").with_call(b"tls", timeout=10)
    assert names == [b"a", b"a", b"b", b"b"]
    assert (stream, joined, echoed) == ([b"0", b"1", b"2"], b"a+b", [b"x", b"y"])
    assert answer == b"secure:tls"
    assert dict(call.trailing_metadata())["x-served-by"] == "secure"


def test_the_gateways_refusals_are_grpc_statuses(gateway):
    running, *_ = gateway
    token = with_pyjwt(claims(aud=None), SECRET, "HS256").decode()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        assert code_of(ch, "/down.Echo/Unary") == grpc.StatusCode.UNAVAILABLE
        assert code_of(ch, "/private.Echo/Unary") == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(ch, "/private.Echo/Unary", metadata=(("authorization", f"Bearer {token}"),)) == \
            grpc.StatusCode.OK
        assert code_of(ch, "/limited.Echo/Unary") == grpc.StatusCode.OK
        assert code_of(ch, "/limited.Echo/Unary") == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert code_of(ch, "/nothing.Here/Call") == grpc.StatusCode.UNIMPLEMENTED
        assert code_of(ch, "/test.Echo/NotFound") == grpc.StatusCode.NOT_FOUND


def test_calls_are_in_metrics_and_the_access_log(gateway):
    running, *_ = gateway
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        for _ in range(3):
            ch.unary_unary("/test.Echo/Unary")(b"x", timeout=10)
        code_of(ch, "/down.Echo/Unary")
    wanted = {'rusta_grpc_calls_total{route="echo",grpc_status="0"} 3',
              'rusta_grpc_calls_total{route="down",grpc_status="14"} 1',
              'rusta_requests_total{route="echo",method="POST",status_class="2xx"} 3'}
    lines: set[str] = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not wanted <= lines:  # the workers' figures come every second
        _, _, body = http("GET", running.admin_url + "/metrics", headers={"Connection": "close"})
        lines = set(body.decode().splitlines())
        time.sleep(0.2)
    assert wanted <= lines
    logged = [line for line in running.access_lines() if line["route"] in ("echo", "down")]
    assert [(line["path"], line["grpc_status"]) for line in logged] == [("/test.Echo/Unary", 0)] * 3 + [
        ("/down.Echo/Unary", 14)]
    assert logged[-1]["error"] == "upstream_connect_refused"


def test_a_grpc_backend_its_health_check_found_not_serving_gets_no_calls(tmp_path):
    with GrpcBackend("up", health={"": 1}) as up, GrpcBackend("down", health={"": 2}) as down:
        import_config({"version": 1, "routers": [grpc_route(
            "checked", "/test.Echo/{method}",
            [{"host": "http://127.0.0.1", "port": b.port, "health_check_path": "/"} for b in (up, down)],
            health_check={"interval_s": 60, "unhealthy_threshold": 1})]}, actor=None, source="test")
        run = probe_due_backends()
        assert [(c.to_state, c.reason) for c in run.changes] == [("healthy", "grpc_serving"),
                                                                 ("unhealthy", "grpc_not_serving")]
        with serving_gateway(tmp_path) as running, grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            names = {ch.unary_unary("/test.Echo/Whoami")(b"", timeout=10) for _ in range(10)}
    assert (names, down.calls) == ({b"up"}, 0)
