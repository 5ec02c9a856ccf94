"""gRPC routes end to end on the proxy listener's HTTP/2: a grpcio client -> the gateway (real uvicorn with Rusta's
listener) -> grpcio servers, for every kind of call and every gateway error a gRPC client can get."""
from __future__ import annotations

import io
import json
import queue
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import trustme

from protocols.http.accesslog import AccessLog
from protocols.recorder import Recorder
from tests.protocols.auth.tokens import SECRET, claims, with_pyjwt
from tests.support.grpc_backend import GrpcBackend, grpc_route, tls_grpc_route
from tests.support.proxy import ProxyServer
from tests.support.upstream import refused_port


@pytest.fixture(scope="module")
def backend() -> Iterator[GrpcBackend]:
    with GrpcBackend("one") as server:
        yield server


def channel(proxy: ProxyServer) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{proxy.port}")


def unary(proxy: ProxyServer, method: str, request: bytes, **kwargs: Any) -> tuple[bytes, grpc.Call]:
    with channel(proxy) as ch:
        return ch.unary_unary(f"/test.Echo/{method}").with_call(request, timeout=kwargs.pop("timeout", 10), **kwargs)


def refused(proxy: ProxyServer, method: str = "Unary", **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as failed:
        unary(proxy, method, b"x", **kwargs)
    return failed.value


def test_unary_server_client_and_bidirectional_calls_pass_through(backend):
    with ProxyServer([grpc_route("echo", [backend.port])]) as proxy, channel(proxy) as ch:
        answer, call = ch.unary_unary("/test.Echo/Unary").with_call(b"hi", timeout=10)
        assert (answer, call.code()) == (b"one:hi", grpc.StatusCode.OK)
        assert list(ch.unary_stream("/test.Echo/ServerStream")(b"3", timeout=10)) == [b"one:0", b"one:1", b"one:2"]
        assert ch.stream_unary("/test.Echo/ClientStream")(iter([b"a", b"b", b"c"]), timeout=10) == b"one:a+b+c"
        # Each message is sent only once the answer to the one before has come back: the call streams both ways.
        outgoing: queue.Queue[bytes | None] = queue.Queue()
        outgoing.put(b"first")
        replies = ch.stream_stream("/test.Echo/Bidi")(iter(outgoing.get, None), timeout=10)
        got = [next(replies)]
        outgoing.put(b"second")
        got.append(next(replies))
        outgoing.put(None)
        assert got + list(replies) == [b"one:first", b"one:second"]


def test_custom_trailing_metadata_arrives_unchanged(backend):
    with ProxyServer([grpc_route("echo", [backend.port])]) as proxy:
        _, call = unary(proxy, "Unary", b"hi")
    assert dict(call.trailing_metadata()) == {"x-served-by": "one", "x-trailer-bin": b"\x00\x01\xff"}


def test_a_backends_own_error_arrives_unchanged(backend):
    with ProxyServer([grpc_route("echo", [backend.port])]) as proxy:
        error = refused(proxy, "NotFound")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such thing: x"
    assert dict(error.trailing_metadata()) == {"x-why": "missing"}


def test_no_backend_listening_is_unavailable():
    with ProxyServer([grpc_route("down", [refused_port()])]) as proxy:
        error = refused(proxy)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details().startswith("Could not connect to backend 127.0.0.1:")


def test_a_slow_backend_past_the_clients_deadline_is_deadline_exceeded():
    with GrpcBackend("slow", slow_s=5.0) as server, ProxyServer([grpc_route("slow", [server.port])]) as proxy:
        error = refused(proxy, "Slow", timeout=0.3)
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert wait_until(lambda: server.cancelled == 1)  # the gateway cancelled the backend's call


def test_a_jwt_route_without_a_token_is_unauthenticated_and_with_one_is_served(backend):
    route = grpc_route("private", [backend.port], auth_required=True)
    with ProxyServer([route], settings={"jwt": {"secret": SECRET}}) as proxy:
        error = refused(proxy)
        token = with_pyjwt(claims(aud=None), SECRET, "HS256").decode()
        answer, _ = unary(proxy, "Unary", b"ok", metadata=(("authorization", f"Bearer {token}"),))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert answer == b"one:ok"


def test_a_rate_limit_of_one_a_minute_hit_twice_is_resource_exhausted(backend):
    route = grpc_route("limited", [backend.port], policies={"rate_limit": {"limit": 1, "window_s": 60}})
    with ProxyServer([route]) as proxy:
        unary(proxy, "Unary", b"first")
        error = refused(proxy)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_method_without_a_route_is_unimplemented(backend):
    with ProxyServer([grpc_route("echo", [backend.port])]) as proxy, channel(proxy) as ch:
        with pytest.raises(grpc.RpcError) as failed:
            ch.unary_unary("/other.Service/Call")(b"x", timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_calls_are_balanced_over_two_backends():
    with GrpcBackend("a") as first, GrpcBackend("b") as second:
        with ProxyServer([grpc_route("pair", [first.port, second.port])]) as proxy, channel(proxy) as ch:
            names = [ch.unary_unary("/test.Echo/Whoami")(b"", timeout=10) for _ in range(4)]
    assert sorted(names) == [b"a", b"a", b"b", b"b"]


def test_a_tls_backend_is_reached_with_the_routes_own_ca():
    ca = trustme.CA()
    with GrpcBackend("secure", tls=ca) as server:
        with ProxyServer([tls_grpc_route(902, server, ca)]) as proxy:
            answer, _ = unary(proxy, "Unary", b"tls")
    assert answer == b"secure:tls"


def test_a_grpc_call_over_http_1_1_is_refused_with_426(backend):
    with ProxyServer([grpc_route("echo", [backend.port])]) as proxy:
        reply = proxy.call("POST", "/test.Echo/Unary", [("Content-Type", "application/grpc")], b"\x00\x00\x00\x00\x00")
    assert reply.status == 426
    assert reply.json()["type"] == "http2_required"


def test_calls_are_counted_by_status_and_logged(backend):
    stream = io.StringIO()
    recorder = Recorder()
    with ProxyServer([grpc_route("counted", [backend.port])], AccessLog(stream), recorder=recorder) as proxy:
        unary(proxy, "Unary", b"x")
        refused(proxy, "NotFound")
        assert proxy.app.access_log is not None
        assert wait_until(lambda: stream.getvalue().count("\n") == 2)
    assert recorder.totals.grpc_calls == {("counted", "0"): 1, ("counted", "5"): 1}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["path"], line["status"], line["grpc_status"]) for line in lines] == [
        ("/test.Echo/Unary", 200, 0), ("/test.Echo/NotFound", 200, 5)]


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True

