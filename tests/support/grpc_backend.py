"""A real grpcio server on 127.0.0.1 for the suite: generic handlers with bytes in and out (no protobuf), in
cleartext or TLS (a trustme CA's certificate for 127.0.0.1 and localhost).

Methods of the service `test.Echo` (every answer is prefixed with the server's `name` and ":" unless said):
  Unary           the request back; trailing metadata `x-served-by: NAME` and `x-trailer-bin` (binary)
  ServerStream    the request is a count N: N messages "NAME:0" ... "NAME:N-1"; "N:S" pads each to S bytes
  ClientStream    every request message joined with "+"
  Bidi            each request message back as it arrives
  NotFound        fails with NOT_FOUND "no such thing: <request>" (and trailing metadata `x-why: missing`)
  Refuse          (client streaming) fails with INVALID_ARGUMENT "refused: <first message>" on the first message
  Slow            the request after `slow_s` seconds (0.5 by default)
  Whoami          NAME (no prefix)
  Metadata        the invocation metadata it got, "key=value" lines (no prefix)

With `health={service: status}` it also serves grpc.health.v1.Health/Check (a HealthCheckRequest in, a
HealthCheckResponse out: 1 SERVING, 2 NOT_SERVING; "" is the whole server), NOT_FOUND for a service not listed,
as grpcio-health-checking does. `backend.health` may be changed while it serves; `backend.health_requests`
keeps the services asked about.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import trustme

from protocols.table import BackendSpec, RouteSpec
from tests.support.proxy import pool_route

SERVICE = "test.Echo"
HEALTH_SERVICE = "grpc.health.v1.Health"


def frame(message: bytes) -> bytes:
    """One gRPC length-prefixed message (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def unframe(data: bytes) -> list[bytes]:
    """The messages of a gRPC body."""
    messages = []
    while data:
        size = int.from_bytes(data[1:5], "big")
        messages.append(data[5:5 + size])
        data = data[5 + size:]
    return messages


class GrpcBackend:
    """`with GrpcBackend("a") as backend:` serves test.Echo on `backend.port` (TLS when `tls` is a trustme CA;
    `max_concurrent_streams` is the HTTP/2 setting it announces, `options` grpcio's own server options)."""

    def __init__(self, name: str = "backend", *, tls: trustme.CA | None = None, slow_s: float = 0.5,
                 max_concurrent_streams: int | None = None, options: tuple[tuple[str, Any], ...] = (),
                 health: dict[str, int] | None = None) -> None:
        self.name = name
        self.health = health
        self.health_requests: list[str] = []
        self.slow_s = slow_s
        self.calls = 0
        self.cancelled = 0
        if max_concurrent_streams is not None:
            options = (*options, ("grpc.max_concurrent_streams", max_concurrent_streams))
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=options)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, self._handlers()),))
        if health is not None:
            self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
                HEALTH_SERVICE, {"Check": grpc.unary_unary_rpc_method_handler(self._health_check)}),))
        if tls is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            cert = tls.issue_cert("127.0.0.1", "localhost")
            credentials = grpc.ssl_server_credentials(
                [(cert.private_key_pem.bytes(), b"".join(blob.bytes() for blob in cert.cert_chain_pems))])
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)

    def __enter__(self) -> GrpcBackend:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)

    def _handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "Unary": grpc.unary_unary_rpc_method_handler(self._unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self._server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self._client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self._bidi),
            "NotFound": grpc.unary_unary_rpc_method_handler(self._not_found),
            "Refuse": grpc.stream_unary_rpc_method_handler(self._refuse),
            "Slow": grpc.unary_unary_rpc_method_handler(self._slow),
            "Whoami": grpc.unary_unary_rpc_method_handler(self._whoami),
            "Metadata": grpc.unary_unary_rpc_method_handler(self._metadata),
        }

    def _prefixed(self, message: bytes) -> bytes:
        return self.name.encode() + b":" + message

    def _unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        context.set_trailing_metadata((("x-served-by", self.name), ("x-trailer-bin", b"\x00\x01\xff")))
        return self._prefixed(request)

    def _server_stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.calls += 1
        count, _, size = request.partition(b":")
        for index in range(int(count)):
            yield self._prefixed(str(index).encode()).ljust(int(size or 0), b".")

    def _client_stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        return self._prefixed(b"+".join(requests))

    def _bidi(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        self.calls += 1
        for request in requests:
            yield self._prefixed(request)

    def _not_found(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        context.set_trailing_metadata((("x-why", "missing"),))
        context.abort(grpc.StatusCode.NOT_FOUND, f"no such thing: {request.decode()}")
        raise AssertionError("abort raises")

    def _refuse(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        first = next(requests)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"refused: {first.decode()}")
        raise AssertionError("abort raises")

    def _slow(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        deadline = time.monotonic() + self.slow_s
        while time.monotonic() < deadline:
            if not context.is_active():
                self.cancelled += 1
                return b""
            time.sleep(0.01)
        return self._prefixed(request)

    def _whoami(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        return self.name.encode()

    def _metadata(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        pairs: Any = context.invocation_metadata()
        return "\n".join(f"{item.key}={item.value}" for item in pairs).encode()

    def _health_check(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        # HealthCheckRequest: field 1 (string, tag 0x0a) with a one-byte length, enough for test names.
        service = request[2:2 + request[1]].decode() if request[:1] == b"\x0a" else ""
        self.health_requests.append(service)
        status = (self.health or {}).get(service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service}")
            raise AssertionError("abort raises")
        return b"\x08" + bytes([status])  # HealthCheckResponse: field 1 (varint)


def grpc_route(name: str, ports: list[int], **extra: Any) -> RouteSpec:
    """A grpc route of the data plane for test.Echo over cleartext backends on these ports."""
    return pool_route(name, "/test.Echo/{method}", ports, methods=("POST",), protocol="grpc", **extra)


def tls_grpc_route(route_id: int, server: GrpcBackend, ca: trustme.CA) -> RouteSpec:
    """A grpc route to one TLS backend reached with the route's own CA (`ca`, which issued its certificate)."""
    backend = BackendSpec(id=route_id, scheme="https", host="127.0.0.1", port=server.port,
                          tls_ca=ca.cert_pem.bytes().decode(), tls_server_name="localhost")
    return RouteSpec(id=route_id, name="secure", external_path="/test.Echo/{method}", methods=("POST",),
                     backends=(backend,), protocol="grpc")
