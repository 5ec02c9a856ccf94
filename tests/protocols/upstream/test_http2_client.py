"""The upstream HTTP/2 client against a real grpcio server on loopback: multiplexing, stream limits, flow
control both ways, TLS with a backend's own CA, and its failures as the gateway's errors."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import trustme

from protocols.errors import UpstreamRefused, UpstreamReset
from protocols.table import BackendSpec
from protocols.upstream.http2 import STREAM_WINDOW, Http2Stream
from protocols.upstream.http2_client import Http2Client
from tests.support.grpc_backend import GrpcBackend, frame, unframe
from tests.support.upstream import refused_port

GRPC_HEADERS = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]


@pytest.fixture(scope="module")
def backend() -> Iterator[GrpcBackend]:
    with GrpcBackend("one") as server:
        yield server


def spec(port: int, scheme: str = "http", **tls: object) -> BackendSpec:
    return BackendSpec(id=1, scheme=scheme, host="127.0.0.1", port=port, **tls)  # type: ignore[arg-type]


async def call(client: Http2Client, port: int, method: str, *messages: bytes,
               scheme: str = "http", **tls: object) -> tuple[Http2Stream, list[bytes]]:
    """One call: every message sent, the stream half-closed, the whole answer read."""
    stream = await client.open(spec(port, scheme, **tls), b"POST", f"/test.Echo/{method}".encode(), GRPC_HEADERS,
                               connect_timeout=5.0)
    await stream.send(b"".join(frame(m) for m in messages), end=True)
    await stream.response()
    body = b""
    while chunk := await stream.read():
        body += chunk
    stream.finish()
    return stream, unframe(body)


def connections(client: Http2Client) -> int:
    return sum(len(conns) for conns in client._connections.values())


def test_a_unary_call_gets_its_message_and_trailers(backend):
    async def scenario() -> tuple[Http2Stream, list[bytes]]:
        return await call(Http2Client(), backend.port, "Unary", b"hello")

    stream, messages = asyncio.run(scenario())
    assert stream.status == 200
    assert messages == [b"one:hello"]
    trailers = dict(stream.trailers)
    assert trailers[b"grpc-status"] == b"0"
    assert trailers[b"x-served-by"] == b"one"


def test_concurrent_calls_share_one_connection(backend):
    async def scenario() -> tuple[list[list[bytes]], int]:
        client = Http2Client()
        results = await asyncio.gather(*(call(client, backend.port, "Unary", str(i).encode()) for i in range(20)))
        return [messages for _, messages in results], connections(client)

    answers, count = asyncio.run(scenario())
    assert answers == [[f"one:{i}".encode()] for i in range(20)]
    assert count == 1


def test_the_servers_stream_limit_opens_another_connection_instead_of_exceeding_it():
    limited = GrpcBackend("limited", slow_s=0.3, max_concurrent_streams=2)

    async def scenario() -> tuple[list[list[bytes]], int, list[int]]:
        client = Http2Client()
        results = await asyncio.gather(*(call(client, limited.port, "Slow", str(i).encode()) for i in range(5)))
        limits = [conn.h2.remote_settings.max_concurrent_streams
                  for conns in client._connections.values() for conn in conns]
        return [messages for _, messages in results], connections(client), limits

    with limited:
        answers, count, limits = asyncio.run(scenario())
    assert answers == [[f"limited:{i}".encode()] for i in range(5)]
    assert limits and set(limits) == {2}
    assert count == 3


def test_a_slow_reader_holds_at_most_one_stream_window_of_the_answer(backend):
    async def scenario() -> tuple[int, int]:
        client = Http2Client()
        stream = await client.open(spec(backend.port), b"POST", b"/test.Echo/ServerStream", GRPC_HEADERS,
                                   connect_timeout=5.0)
        await stream.send(frame(b"200:8192"), end=True)
        await stream.response()
        received = len(await stream.read())
        # Give the backend every chance to overrun us: it may only fill the window we have not re-opened.
        for _ in range(50):
            await asyncio.sleep(0.01)
        held = sum(len(data) for data, _ in stream._chunks)
        while chunk := await stream.read():
            received += len(chunk)
        stream.finish()
        return held, received

    held, received = asyncio.run(scenario())
    assert held <= STREAM_WINDOW
    assert received == 200 * (8192 + 5)  # the window was re-opened as we read


def test_a_request_larger_than_the_backends_window_waits_for_it_and_arrives_whole(backend):
    big = bytes(range(256)) * 4096  # 1 MiB in one message

    async def scenario() -> list[bytes]:
        _, messages = await call(Http2Client(), backend.port, "ClientStream", big, b"end")
        return messages

    assert asyncio.run(scenario()) == [b"one:" + big + b"+end"]


def test_a_refused_connection_is_the_gateways_refused_error():
    async def scenario() -> None:
        await call(Http2Client(), refused_port(), "Unary", b"x")

    with pytest.raises(UpstreamRefused):
        asyncio.run(scenario())


def test_a_dead_connection_is_replaced_by_a_new_one(backend):
    async def scenario() -> tuple[list[bytes], int]:
        client = Http2Client()
        await call(client, backend.port, "Unary", b"first")
        (old,) = [conn for conns in client._connections.values() for conn in conns]
        assert old.transport is not None
        old.transport.abort()
        await asyncio.sleep(0)  # connection_lost runs
        _, messages = await call(client, backend.port, "Unary", b"second")
        (new,) = [conn for conns in client._connections.values() for conn in conns]
        return messages, int(new is not old)

    assert asyncio.run(scenario()) == ([b"one:second"], 1)


def test_a_connection_the_server_sends_away_is_replaced_by_a_new_one():
    aging = GrpcBackend("aging", options=(("grpc.max_connection_age_ms", 100),
                                          ("grpc.max_connection_age_grace_ms", 1000)))

    async def scenario() -> tuple[list[bytes], int]:
        client = Http2Client()
        first = await call(client, aging.port, "Unary", b"1")
        (old,) = [conn for conns in client._connections.values() for conn in conns]
        while not old.going_away and not old.closed:  # the server's GOAWAY, once the connection is 100 ms old
            await asyncio.sleep(0.02)
        second = await call(client, aging.port, "Unary", b"2")
        (new,) = [conn for conns in client._connections.values() for conn in conns]
        return first[1] + second[1], int(new is not old)

    with aging:
        assert asyncio.run(scenario()) == ([b"aging:1", b"aging:2"], 1)


def test_a_connection_idle_past_the_idle_timeout_is_closed(backend):
    async def scenario() -> tuple[bool, bool]:
        client = Http2Client(idle_timeout=0.05)
        stream = await client.open(spec(backend.port), b"POST", b"/test.Echo/Slow", GRPC_HEADERS, connect_timeout=5.0)
        conn = stream.conn
        await asyncio.sleep(0.1)
        busy_survived = not conn.closed  # a call in progress keeps it
        await stream.send(frame(b"x"), end=True)
        await stream.response()
        while await stream.read():
            pass
        stream.finish()
        while not conn.closed:
            await asyncio.sleep(0.01)
        return busy_survived, conn.closed

    assert asyncio.run(scenario()) == (True, True)


def test_a_connection_lost_mid_call_fails_the_call_with_a_reset(backend):
    async def scenario() -> None:
        client = Http2Client()
        stream = await client.open(spec(backend.port), b"POST", b"/test.Echo/Slow", GRPC_HEADERS, connect_timeout=5.0)
        await stream.send(frame(b"x"), end=True)
        stream.conn.transport.abort()  # type: ignore[union-attr]
        await stream.response()

    with pytest.raises(UpstreamReset):
        asyncio.run(scenario())


def test_a_tls_backend_is_reached_with_its_own_ca():
    ca = trustme.CA()
    with GrpcBackend("secure", tls=ca) as server:
        async def scenario() -> list[bytes]:
            _, messages = await call(Http2Client(), server.port, "Unary", b"hi", scheme="https",
                                     tls_ca=ca.cert_pem.bytes().decode(), tls_server_name="localhost")
            return messages

        assert asyncio.run(scenario()) == [b"secure:hi"]


def test_a_tls_backend_whose_certificate_is_not_trusted_is_refused():
    with GrpcBackend("secure", tls=trustme.CA()) as server:
        async def scenario() -> None:
            await call(Http2Client(), server.port, "Unary", b"hi", scheme="https", tls_server_name="localhost")

        with pytest.raises(UpstreamRefused, match="TLS handshake failed"):
            asyncio.run(scenario())


def test_a_backend_whose_ca_bundle_does_not_load_is_refused():
    async def scenario() -> None:
        await call(Http2Client(), refused_port(), "Unary", b"hi", scheme="https", tls_ca="not a certificate")

    with pytest.raises(UpstreamRefused, match="CA bundle does not load"):
        asyncio.run(scenario())
