"""The pooled upstream client against a real backend on loopback: reuse, limits, streaming, retries, failures."""
from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from protocols.errors import (
    UpstreamConnectTimeout,
    UpstreamInvalidResponse,
    UpstreamNameNotResolved,
    UpstreamRefused,
    UpstreamReset,
    UpstreamTimeout,
)
from protocols.table import BackendSpec
from protocols.upstream import UpstreamClient, UpstreamResponse
from tests.support.upstream import (
    BlackholeListener,
    UpstreamServer,
    pattern_chunks,
    pattern_sha256,
    refused_port,
    tls_contexts,
)

MiB = 1 << 20


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def backend(port: int, scheme: str = "http") -> BackendSpec:
    return BackendSpec(id=1, scheme=scheme, host="127.0.0.1", port=port)


async def send(client: UpstreamClient, port: int, target: str = "/echo", method: bytes = b"GET",
               body: bytes | AsyncIterator[bytes] = b"", content_length: int | None = None,
               read_timeout: float = 5.0, connect_timeout: float = 5.0, scheme: str = "http") -> UpstreamResponse:
    pool = client.pool(backend(port, scheme))
    headers = [(b"host", pool.host_header)]
    return await client.request(pool, method, target.encode(), headers, body, content_length,
                                connect_timeout=connect_timeout, read_timeout=read_timeout)


async def read_all(response: UpstreamResponse) -> bytes:
    return b"".join([chunk async for chunk in response])


async def fetch_json(client: UpstreamClient, port: int, target: str = "/echo", **kwargs: Any) -> Any:
    return json.loads(await read_all(await send(client, port, target, **kwargs)))


async def wait_for(upstream: UpstreamServer, condition: Any) -> bool:
    # The backend lives in another thread; keep this loop running (timers, callbacks) while we wait.
    return await asyncio.to_thread(upstream.wait_until, condition)


def test_it_reuses_one_connection_for_sequential_requests(upstream):
    async def scenario() -> list[int]:
        client = UpstreamClient()
        return [(await fetch_json(client, upstream.port))["connection"] for _ in range(3)]

    assert asyncio.run(scenario()) == [1, 1, 1]
    assert upstream.connections == 1


def test_it_keeps_no_more_idle_connections_than_the_pool_size(upstream):
    async def scenario() -> bool:
        client = UpstreamClient(pool_size=1)
        responses = await asyncio.gather(*(send(client, upstream.port, "/stream?bytes=10") for _ in range(3)))
        for response in responses:
            await read_all(response)
        return await wait_for(upstream, lambda u: u.closed_connections == 2)

    assert asyncio.run(scenario())
    assert upstream.connections == 3


def test_it_closes_connections_that_stay_idle_past_the_idle_timeout(upstream):
    async def scenario() -> bool:
        client = UpstreamClient(idle_timeout=0.05)
        await fetch_json(client, upstream.port)
        return await wait_for(upstream, lambda u: u.closed_connections == 1)

    assert asyncio.run(scenario())


def test_it_streams_a_chunked_response_body(upstream):
    async def scenario() -> str:
        client = UpstreamClient()
        response = await send(client, upstream.port, f"/stream?bytes={8 * MiB + 3}&chunked=1")
        digest = hashlib.sha256()
        async for chunk in response:
            digest.update(chunk)
        return digest.hexdigest()

    assert asyncio.run(scenario()) == pattern_sha256(8 * MiB + 3)


def test_it_stops_reading_the_backend_while_the_consumer_lags(upstream):
    size = 64 * MiB

    async def scenario() -> tuple[int, int]:
        client = UpstreamClient()
        response = await send(client, upstream.port, f"/stream?bytes={size}")
        received = len(await response.__anext__())
        assert await asyncio.to_thread(upstream.stream_stalled.wait, 10)
        sent_while_stalled = upstream.bytes_streamed
        received += len(await read_all(response))
        return sent_while_stalled, received

    sent_while_stalled, received = asyncio.run(scenario())
    assert sent_while_stalled < size // 2  # socket buffers plus our bounded buffer, not the whole body
    assert received == size


def test_it_sends_a_body_of_unknown_length_chunked(upstream):
    async def body() -> AsyncIterator[bytes]:
        for chunk in pattern_chunks(3 * MiB + 5, 64 * 1024):
            yield bytes(chunk)

    async def scenario() -> Any:
        return await fetch_json(UpstreamClient(), upstream.port, "/upload", method=b"POST", body=body())

    assert asyncio.run(scenario()) == {"length": 3 * MiB + 5, "sha256": pattern_sha256(3 * MiB + 5)}
    assert upstream.requests[0].header("transfer-encoding") == ["chunked"]


def test_it_keeps_the_content_length_of_a_streamed_body(upstream):
    async def body() -> AsyncIterator[bytes]:
        for chunk in pattern_chunks(MiB, 64 * 1024):
            yield bytes(chunk)

    async def scenario() -> Any:
        return await fetch_json(UpstreamClient(), upstream.port, "/upload", method=b"PUT", body=body(),
                                content_length=MiB)

    assert asyncio.run(scenario())["length"] == MiB
    assert upstream.requests[0].header("content-length") == [str(MiB)]
    assert upstream.requests[0].header("transfer-encoding") == []


def test_it_retries_once_on_a_fresh_connection_when_a_reused_one_was_dropped(upstream):
    async def scenario() -> Any:
        client = UpstreamClient()
        await read_all(await send(client, upstream.port, "/drop-next"))
        return await fetch_json(client, upstream.port, "/echo")

    assert asyncio.run(scenario())["connection"] == 2


async def one_chunk() -> AsyncIterator[bytes]:
    yield b"part one"


@pytest.mark.parametrize("make_body", [lambda: b"buffered", one_chunk], ids=["buffered", "streamed"])
def test_it_does_not_retry_a_request_with_a_body_on_a_dropped_connection(upstream, make_body):
    async def scenario() -> None:
        client = UpstreamClient()
        await read_all(await send(client, upstream.port, "/drop-next"))
        await send(client, upstream.port, "/upload", method=b"POST", body=make_body())

    with pytest.raises(UpstreamReset):
        asyncio.run(scenario())
    assert upstream.connections == 1


def test_it_does_not_retry_a_failure_on_a_fresh_connection(upstream):
    with pytest.raises(UpstreamReset):
        asyncio.run(send(UpstreamClient(), upstream.port, "/reset"))
    assert len(upstream.requests) == 1


def test_it_reports_a_refused_connection():
    with pytest.raises(UpstreamRefused, match="127.0.0.1"):
        asyncio.run(send(UpstreamClient(), refused_port()))


def test_it_reports_a_host_name_that_does_not_resolve_apart_from_a_refusal():
    async def scenario() -> None:
        client = UpstreamClient()
        pool = client.pool(BackendSpec(id=1, scheme="http", host="nothing.invalid", port=8080))
        await client.request(pool, b"GET", b"/", [(b"host", pool.host_header)], connect_timeout=5.0,
                             read_timeout=5.0)

    with pytest.raises(UpstreamNameNotResolved, match=r"nothing\.invalid:8080.*did not resolve") as caught:
        asyncio.run(scenario())
    assert caught.value.type == "upstream_name_not_resolved"


def test_it_reports_a_connect_timeout():
    with BlackholeListener() as blackhole, pytest.raises(UpstreamConnectTimeout):
        asyncio.run(send(UpstreamClient(), blackhole.port, connect_timeout=0.2))


def test_it_reports_a_read_timeout_when_the_head_never_comes(upstream):
    with pytest.raises(UpstreamTimeout, match="0.2 s"):
        asyncio.run(send(UpstreamClient(), upstream.port, "/hang", read_timeout=0.2))


def test_it_reports_a_read_timeout_when_the_body_stops_coming(upstream):
    async def scenario() -> None:
        await read_all(await send(UpstreamClient(), upstream.port, "/stall-mid-body", read_timeout=0.2))

    with pytest.raises(UpstreamTimeout, match="next part of the body"):
        asyncio.run(scenario())


def test_it_reports_an_invalid_response(upstream):
    with pytest.raises(UpstreamInvalidResponse):
        asyncio.run(send(UpstreamClient(), upstream.port, "/garbage"))


def test_it_reports_a_reset_in_the_middle_of_the_body(upstream):
    async def scenario() -> None:
        await read_all(await send(UpstreamClient(), upstream.port, "/reset-mid-body"))

    with pytest.raises(UpstreamReset, match="while sending the response body"):
        asyncio.run(scenario())


def test_it_does_not_reuse_a_connection_whose_body_was_abandoned(upstream):
    async def scenario() -> Any:
        client = UpstreamClient()
        response = await send(client, upstream.port, f"/stream?bytes={4 * MiB}")
        response.close()
        return await fetch_json(client, upstream.port)

    assert asyncio.run(scenario())["connection"] == 2


def test_it_reuses_the_connection_after_a_head_request(upstream):
    async def scenario() -> tuple[int, bytes, Any]:
        client = UpstreamClient()
        head = await send(client, upstream.port, "/echo", method=b"HEAD")
        head_body = await read_all(head)
        return head.status, head_body, await fetch_json(client, upstream.port)

    status, head_body, after = asyncio.run(scenario())
    assert (status, head_body) == (200, b"")
    assert after["connection"] == 1


def test_it_does_not_reuse_a_connection_that_sent_more_than_the_response(upstream):
    async def scenario() -> tuple[bytes, Any]:
        client = UpstreamClient()
        first = await read_all(await send(client, upstream.port, "/surplus"))
        return first, await fetch_json(client, upstream.port)

    first, after = asyncio.run(scenario())
    assert first == b"first"
    assert after["connection"] == 2


def test_it_reads_a_body_that_ends_when_the_backend_closes(upstream):
    async def scenario() -> bytes:
        return await read_all(await send(UpstreamClient(), upstream.port, "/eof-body"))

    assert asyncio.run(scenario()) == b"until the end"


def test_it_drops_hop_by_hop_fields_from_the_response(upstream):
    async def scenario() -> list[tuple[bytes, bytes]]:
        response = await send(UpstreamClient(), upstream.port, "/hop")
        await read_all(response)
        return response.headers

    names = [name for name, _ in asyncio.run(scenario())]
    assert b"x-kept" in names
    assert not {b"connection", b"keep-alive", b"proxy-authenticate", b"x-secret"} & set(names)


def test_it_speaks_tls_to_https_backends():
    server_context, client_context = tls_contexts()
    with UpstreamServer(ssl_context=server_context) as upstream:
        body = asyncio.run(fetch_json(UpstreamClient(ssl_context=client_context), upstream.port, scheme="https"))
    assert body["method"] == "GET"


def test_it_refuses_a_tls_backend_it_cannot_verify():
    server_context, _ = tls_contexts()
    with UpstreamServer(ssl_context=server_context) as upstream, pytest.raises(UpstreamRefused, match="TLS"):
        asyncio.run(send(UpstreamClient(), upstream.port, scheme="https"))
