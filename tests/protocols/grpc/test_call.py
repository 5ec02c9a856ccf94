"""gRPC routes through ProxyApp, called as the HTTP/2 listener calls it, to real grpcio servers on loopback: the four
kinds of call, trailers passed through, the gateway's errors as gRPC statuses, balancing, TLS, metrics and logs."""
from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import trustme

from protocols.dataplane import DataPlane, ProxyOptions
from protocols.http.accesslog import AccessLog
from protocols.http.proxy import ProxyApp
from protocols.recorder import Recorder
from protocols.table import LiveTable, RouteSpec, RouteTable
from tests.protocols.auth.tokens import SECRET, bearer, claims, with_pyjwt
from tests.support.grpc_asgi import AsgiCall, grpc_scope, unary
from tests.support.grpc_backend import GrpcBackend, grpc_route, tls_grpc_route
from tests.support.upstream import refused_port

T = TypeVar("T")
OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, PERMISSION_DENIED, INTERNAL = 0, 3, 4, 5, 7, 13
RESOURCE_EXHAUSTED, UNIMPLEMENTED, UNAVAILABLE, UNAUTHENTICATED = 8, 12, 14, 16


@pytest.fixture(scope="module")
def backend() -> Iterator[GrpcBackend]:
    with GrpcBackend("one", slow_s=1.0) as server:
        yield server


class Spans:
    """A SpanSink that keeps what it is given (every trace sampled)."""

    def __init__(self) -> None:
        self.finished: list[tuple[Any, ...]] = []

    def decide(self, trace_id: bytes, parent_sampled: bool | None) -> bool:
        return True

    def finish(self, *span: Any) -> None:
        self.finished.append(span)


class Gateway:
    """A ProxyApp over `routes` with its own recorder, access log and span sink (built on the test's loop)."""

    def __init__(self, routes: list[RouteSpec], settings: dict[str, Any] | None = None) -> None:
        state = LiveTable()
        state.install(RouteTable(routes, version=1, settings=settings or {}))
        self.recorder = Recorder()
        self.log = io.StringIO()
        self.spans = Spans()
        self.app = ProxyApp(dataplane=DataPlane(ProxyOptions(state=state, recorder=self.recorder, spans=self.spans),
                                                AccessLog(self.log)))

    def lines(self) -> list[dict[str, Any]]:
        assert self.app.access_log is not None
        self.app.access_log.flush()
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


def through(routes: list[RouteSpec], scenario: Callable[[Gateway], Awaitable[T]],
            settings: dict[str, Any] | None = None) -> T:
    async def main() -> T:
        gateway = Gateway(routes, settings)
        try:
            return await scenario(gateway)
        finally:
            await gateway.app.aclose()

    return asyncio.run(main())


# --- the four kinds of call ---------------------------------------------------------------------------------

def test_a_unary_call_gets_the_backends_message_and_trailing_metadata(backend):
    call = through([grpc_route("echo", [backend.port])], lambda gw: unary(gw.app, "/test.Echo/Unary", b"hi"))
    assert call.start["status"] == 200
    assert call.headers[b"content-type"] == b"application/grpc"
    assert call.messages == [b"one:hi"]
    assert call.status == OK
    assert call.trailers[b"x-served-by"] == b"one"
    assert call.trailers[b"x-trailer-bin"] == b"AAH/"  # binary metadata, base64 on the wire, passed as is


def test_a_server_streaming_call_gets_every_message():
    with GrpcBackend("one") as server:
        call = through([grpc_route("echo", [server.port])],
                       lambda gw: unary(gw.app, "/test.Echo/ServerStream", b"5"))
    assert call.messages == [f"one:{i}".encode() for i in range(5)]
    assert call.status == OK


def test_a_client_streaming_call_sends_every_message(backend):
    async def scenario(gw: Gateway) -> AsgiCall:
        call = AsgiCall(gw.app, grpc_scope("/test.Echo/ClientStream"))
        for part in (b"a", b"b", b"c"):
            await call.put(part)
        await call.close()
        return await call.finished()

    call = through([grpc_route("echo", [backend.port])], scenario)
    assert call.messages == [b"one:a+b+c"]
    assert call.status == OK


def test_a_bidirectional_call_answers_each_message_before_the_next_is_sent(backend):
    async def scenario(gw: Gateway) -> tuple[list[bytes], AsgiCall]:
        call = AsgiCall(gw.app, grpc_scope("/test.Echo/Bidi"))
        answers = []
        for part in (b"ping", b"pong", b"again"):
            await call.put(part)
            answers.append(await asyncio.wait_for(call.message(), 10))
        await call.close()
        return answers, await call.finished()

    answers, call = through([grpc_route("echo", [backend.port])], scenario)
    assert answers == [b"one:ping", b"one:pong", b"one:again"]
    assert call.status == OK


def test_a_backends_own_error_status_message_and_metadata_arrive_unchanged(backend):
    call = through([grpc_route("echo", [backend.port])], lambda gw: unary(gw.app, "/test.Echo/NotFound", b"x"))
    assert status_only(call)  # grpcio answered Trailers-Only: its fields are passed on as trailers
    assert call.status == NOT_FOUND
    assert call.trailers[b"grpc-message"] == b"no such thing: x"
    assert call.trailers[b"x-why"] == b"missing"


def test_the_backend_gets_te_trailers_the_time_left_and_the_gateways_fields(backend):
    call = through([grpc_route("echo", [backend.port])],
                   lambda gw: unary(gw.app, "/test.Echo/Metadata", b"", [(b"grpc-timeout", b"20S"),
                                                                         (b"x-custom", b"kept")]))
    seen = dict(line.split("=", 1) for line in call.messages[0].decode().splitlines())
    assert seen["x-custom"] == "kept"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "x-request-id" in seen and "traceparent" in seen
    # grpcio reads te and grpc-timeout itself: it answered (te: trailers) and within the re-stated deadline.
    assert call.status == OK


# --- the gateway's own errors as gRPC statuses ----------------------------------------------------------------

def status_only(call: AsgiCall) -> bool:
    """HTTP 200, application/grpc, no message: the status is all there is (in the trailers)."""
    return (call.start["status"] == 200 and call.start.get("trailers") is True
            and call.headers[b"content-type"] == b"application/grpc" and call.body == b""
            and b"grpc-status" not in call.headers)


def test_no_backend_listening_is_unavailable_trailers_only():
    call = through([grpc_route("down", [refused_port()])], lambda gw: unary(gw.app, "/test.Echo/Unary", b"x"))
    assert status_only(call)
    assert call.status == UNAVAILABLE
    assert b"Could%20not" not in call.trailers[b"grpc-message"]  # spaces are allowed as they are
    assert call.trailers[b"grpc-message"].startswith(b"Could not connect to backend")


def test_the_clients_deadline_passing_is_deadline_exceeded_and_cancels_the_backends_call():
    with GrpcBackend("slow", slow_s=5.0) as server:
        call = through([grpc_route("slow", [server.port])],
                       lambda gw: unary(gw.app, "/test.Echo/Slow", b"x", [(b"grpc-timeout", b"200m")]))
        assert call.status == DEADLINE_EXCEEDED
        assert wait_until(lambda: server.cancelled == 1)


def test_the_routes_total_timeout_is_the_deadline_when_the_client_sets_none():
    with GrpcBackend("slow", slow_s=5.0) as server:
        call = through([grpc_route("slow", [server.port], total_timeout=0.2)],
                       lambda gw: unary(gw.app, "/test.Echo/Slow", b"x"))
    assert call.status == DEADLINE_EXCEEDED


def test_a_jwt_route_called_without_a_token_is_unauthenticated(backend):
    before = backend.calls
    call = through([grpc_route("private", [backend.port], auth_required=True)],
                   lambda gw: unary(gw.app, "/test.Echo/Unary", b"x"), settings={"jwt": {"secret": SECRET}})
    assert status_only(call)
    assert call.status == UNAUTHENTICATED
    assert backend.calls == before


def test_a_jwt_route_called_with_a_valid_token_is_served(backend):
    token = with_pyjwt(claims(aud=None), SECRET, "HS256")
    call = through([grpc_route("private", [backend.port], auth_required=True)],
                   lambda gw: unary(gw.app, "/test.Echo/Unary", b"x", [(b"authorization", bearer(token))]),
                   settings={"jwt": {"secret": SECRET}})
    assert call.status == OK
    assert call.messages == [b"one:x"]


def test_a_rate_limit_of_one_a_minute_hit_twice_is_resource_exhausted(backend):
    async def scenario(gw: Gateway) -> tuple[AsgiCall, AsgiCall]:
        return (await unary(gw.app, "/test.Echo/Unary", b"1"), await unary(gw.app, "/test.Echo/Unary", b"2"))

    first, second = through([grpc_route("limited", [backend.port],
                                         policies={"rate_limit": {"limit": 1, "window_s": 60}})], scenario)
    assert first.status == OK
    assert second.status == RESOURCE_EXHAUSTED
    assert status_only(second)


def test_a_denied_address_is_permission_denied(backend):
    call = through([grpc_route("private", [backend.port], policies={"ip_rules": {"deny": ["127.0.0.0/8"]}})],
                   lambda gw: unary(gw.app, "/test.Echo/Unary", b"x"))
    assert call.status == PERMISSION_DENIED


def test_a_method_no_route_serves_is_unimplemented(backend):
    call = through([grpc_route("echo", [backend.port])], lambda gw: unary(gw.app, "/other.Service/Call", b"x"))
    assert status_only(call)
    assert call.status == UNIMPLEMENTED


def test_a_backend_breaker_open_is_unavailable():
    port = refused_port()
    breaker = {"circuit_breaker": {"failure_threshold": 1, "open_s": 60}}

    async def scenario(gw: Gateway) -> tuple[AsgiCall, AsgiCall]:
        return (await unary(gw.app, "/test.Echo/Unary", b"1"), await unary(gw.app, "/test.Echo/Unary", b"2"))

    first, second = through([grpc_route("fragile", [port], policies=breaker)], scenario)
    assert first.status == UNAVAILABLE
    assert second.status == UNAVAILABLE
    assert b"circuit breaker" in second.trailers[b"grpc-message"]


def test_a_grpc_call_over_http_1_1_is_refused_with_426(backend):
    call = through([grpc_route("echo", [backend.port])],
                   lambda gw: unary(gw.app, "/test.Echo/Unary", b"x", http_version="1.1"))
    assert call.start["status"] == 426
    assert json.loads(call.body)["type"] == "http2_required"
    assert call.headers[b"upgrade"] == b"h2c"


def test_an_http2_request_without_a_grpc_content_type_is_refused_with_415(backend):
    call = through([grpc_route("echo", [backend.port])],
                   lambda gw: unary(gw.app, "/test.Echo/Unary", b"x", content_type=b"application/json"))
    assert call.start["status"] == 415
    assert json.loads(call.body)["type"] == "unsupported_media_type"


# --- balancing, TLS, the client leaving -------------------------------------------------------------------

def test_calls_are_balanced_over_the_routes_backends():
    with GrpcBackend("a") as first, GrpcBackend("b") as second:
        async def scenario(gw: Gateway) -> list[bytes]:
            return [(await unary(gw.app, "/test.Echo/Whoami", b"")).messages[0] for _ in range(4)]

        names = through([grpc_route("pair", [first.port, second.port])], scenario)
    assert sorted(names) == [b"a", b"a", b"b", b"b"]


def test_a_connect_failure_moves_the_call_to_another_backend(backend):
    call = through([grpc_route("pair", [refused_port(), backend.port], load_balancing_strategy="round_robin")],
                   lambda gw: unary(gw.app, "/test.Echo/Whoami", b""))
    assert call.status == OK
    assert call.messages == [b"one"]


def test_a_tls_backend_is_reached_with_the_routes_own_ca():
    ca = trustme.CA()
    with GrpcBackend("secure", tls=ca) as server:
        call = through([tls_grpc_route(901, server, ca)], lambda gw: unary(gw.app, "/test.Echo/Unary", b"tls"))
    assert call.status == OK
    assert call.messages == [b"secure:tls"]


def test_a_client_that_leaves_mid_call_cancels_the_backends_call():
    with GrpcBackend("slow", slow_s=5.0) as server:
        async def scenario(gw: Gateway) -> AsgiCall:
            call = AsgiCall(gw.app, grpc_scope("/test.Echo/Slow"))
            await call.put(b"x", last=True)
            await asyncio.to_thread(wait_until, lambda: server.calls == 1)
            await call.disconnect()
            return await call.finished()

        call = through([grpc_route("slow", [server.port])], scenario)
        assert wait_until(lambda: server.cancelled == 1)
    assert not any(m["type"] == "http.response.start" for m in call.sent)


# --- what is recorded ---------------------------------------------------------------------------------------

def test_calls_are_counted_by_grpc_status_and_logged_with_it(backend):
    async def scenario(gw: Gateway) -> Gateway:
        await unary(gw.app, "/test.Echo/Unary", b"x")
        await unary(gw.app, "/test.Echo/NotFound", b"x")
        return gw

    gw = through([grpc_route("counted", [backend.port])], scenario)
    assert gw.recorder.totals.grpc_calls == {("counted", "0"): 1, ("counted", "5"): 1}
    window = gw.recorder.take_window()
    assert sum(cell[0] for key, cell in window.items() if key[0] == "counted" and key[2] == 200) == 2
    lines = gw.lines()
    assert [(line["route"], line["status"], line["grpc_status"]) for line in lines] == [
        ("counted", 200, 0), ("counted", 200, 5)]
    assert lines[0]["path"] == "/test.Echo/Unary"
    assert lines[0]["backend"] == f"127.0.0.1:{backend.port}"


def test_each_call_is_a_span_whose_traceparent_the_backend_got(backend):
    async def scenario(gw: Gateway) -> tuple[AsgiCall, Gateway]:
        return await unary(gw.app, "/test.Echo/Metadata", b""), gw

    call, gw = through([grpc_route("traced", [backend.port])], scenario)
    seen = dict(line.split("=", 1) for line in call.messages[0].decode().splitlines())
    ((method, path, route, status, *_, sent, _client, span_backend, error, _id),) = gw.spans.finished
    assert (method, path, route, status, error) == ("POST", "/test.Echo/Metadata", "traced", 200, None)
    assert sent.decode() == seen["traceparent"]
    assert span_backend == f"127.0.0.1:{backend.port}"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition another thread makes true (the grpcio server's handler threads)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- failures once the call is under way, and limits ------------------------------------------------------------

def test_a_backend_shut_down_mid_call_ends_it_in_the_trailers_with_the_status_of_how_it_went():
    server = GrpcBackend("leaving")

    async def scenario(gw: Gateway) -> tuple[bytes, AsgiCall]:
        call = AsgiCall(gw.app, grpc_scope("/test.Echo/Bidi"))
        await call.put(b"one")
        first = await asyncio.wait_for(call.message(), 10)
        await asyncio.to_thread(server.server.stop, None)
        return first, await call.finished()

    with server:
        first, call = through([grpc_route("leaving", [server.port])], scenario)
    assert first == b"leaving:one"
    assert call.start["status"] == 200
    # grpcio's server.stop sends GOAWAY NO_ERROR, then GOAWAY INTERNAL_ERROR "Cancelling all calls" (UNAVAILABLE)
    # and RST_STREAM NO_ERROR on the call (INTERNAL in gRPC's mapping), in either order.
    message = call.trailers[b"grpc-message"]
    if b"GOAWAY INTERNAL_ERROR: Cancelling all calls" in message:
        assert call.status == UNAVAILABLE
    else:
        assert b"RST_STREAM NO_ERROR" in message
        assert call.status == INTERNAL


def test_a_backend_that_answers_before_the_client_has_finished_sending_ends_the_call(backend):
    async def scenario(gw: Gateway) -> AsgiCall:
        call = AsgiCall(gw.app, grpc_scope("/test.Echo/Refuse"))
        await call.put(b"first")
        while not any(m["type"] == "http.response.trailers" for m in call.sent) and not call.run.done():
            await asyncio.sleep(0.01)
        await call.put(b"second")  # nobody reads it any more
        return await call.finished()

    call = through([grpc_route("echo", [backend.port])], scenario)
    assert call.status == INVALID_ARGUMENT
    assert call.trailers[b"grpc-message"] == b"refused: first"


def test_a_backend_slower_than_the_routes_read_timeout_to_answer_is_deadline_exceeded():
    with GrpcBackend("slow", slow_s=5.0) as server:
        call = through([grpc_route("slow", [server.port], read_timeout=0.2)],
                       lambda gw: unary(gw.app, "/test.Echo/Slow", b"x"))
    assert call.status == DEADLINE_EXCEEDED
    assert b"did not send the response head" in call.trailers[b"grpc-message"]


def test_request_messages_past_the_routes_body_limit_are_resource_exhausted(backend):
    async def scenario(gw: Gateway) -> AsgiCall:
        call = AsgiCall(gw.app, grpc_scope("/test.Echo/ClientStream"))
        await call.put(b"x" * 600)
        await call.put(b"y" * 600, last=True)
        return await call.finished()

    call = through([grpc_route("small", [backend.port], policies={"limits": {"max_body_bytes": 1000}})], scenario)
    assert call.status == RESOURCE_EXHAUSTED
