"""Raw HTTP/1.1 over loopback for the listener tests: exact bytes out, the answer stream back, split into responses.

http.client repairs what it sends; these helpers never do, so the gateway sees the very bytes a test chose.
Every read is bounded: a read ends when the server closes the connection, when the expected answers are
complete, or at the deadline, whichever comes first.
"""
from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.support.proxy import Reply
from tests.support.upstream import SeenRequest, UpstreamServer

RawResponse = Reply  # one response as it came over the wire


@dataclass
class RawExchange:
    """Everything the server sent on one connection until it closed or the read gave up."""

    data: bytes
    closed: bool  # the server ended the connection (FIN or reset) before the read gave up
    elapsed: float  # seconds from the first byte sent to the end of the read
    responses: list[RawResponse] = field(default_factory=list)

    @property
    def response(self) -> RawResponse:
        """The only response; fails the test when there is not exactly one."""
        assert len(self.responses) == 1, f"expected one response, got {len(self.responses)}: {self.data!r}"
        return self.responses[0]


def parse_responses(data: bytes, closed: bool = True) -> tuple[list[RawResponse], bytes]:
    """The complete responses at the start of `data`, and what is left (a partial response, or garbage).

    A body is framed by Content-Length or chunked; without either it runs to the close (when `closed`).
    """
    responses: list[RawResponse] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            break
        status = int(rest[:3])
        headers = [_field(line) for line in lines[1:]]
        names = {name.lower(): value for name, value in headers}
        start = end + 4
        if status in (204, 304) or 100 <= status < 200:
            body, size = b"", 0
        elif "chunked" in names.get("transfer-encoding", "").lower():
            found = _dechunk(data[start:])
            if found is None:
                break
            body, size = found
        elif "content-length" in names:
            size = int(names["content-length"])
            if len(data) - start < size:
                break
            body = data[start:start + size]
        elif closed:
            body, size = data[start:], len(data) - start
        else:
            break
        if not 100 <= status < 200:
            responses.append(RawResponse(status, headers, body))
        data = data[start + size:]
    return responses, data


def _field(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name, value.strip(" \t")


def _dechunk(data: bytes) -> tuple[bytes, int] | None:
    """A chunked body and how many bytes of `data` it took, or None while it is incomplete."""
    body, at = b"", 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(data[at:line_end].split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", at - 2)
            return (body, trailer_end + 4) if trailer_end >= 0 else None
        if len(data) < at + size + 2:
            return None
        body += data[at:at + size]
        at += size + 2


class RawConnection:
    """`with RawConnection(port) as conn:` one TCP connection that sends exactly what it is given."""

    def __init__(self, port: int, host: str = "127.0.0.1", connect_timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.received = b""
        self.closed = False
        self.started = time.monotonic()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send `data`; False when the server has already closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def readable(self, timeout: float) -> bool:
        """Whether the server sent something (or closed) within `timeout` seconds."""
        return bool(select.select([self.sock], [], [], max(0.0, timeout))[0])

    def pump(self, timeout: float) -> bool:
        """Read what arrives within `timeout` seconds into `received`; True once the server has closed."""
        if self.closed:
            return True
        if not self.readable(timeout):
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
        self.received += chunk
        return self.closed

    def read(self, responses: int | None = None, timeout: float = 5.0) -> RawExchange:
        """Read until the server closes, or (with `responses`) until that many responses are complete, or until
        `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            if responses is not None and len(parse_responses(self.received, False)[0]) >= responses:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.pump(left)
        return self.exchange()

    def exchange(self) -> RawExchange:
        parsed, _ = parse_responses(self.received, self.closed)
        return RawExchange(self.received, self.closed, time.monotonic() - self.started, parsed)

    def still_open(self, wait: float = 0.3) -> bool:
        """The server has neither closed the connection nor sent anything within `wait` seconds."""
        return not self.readable(wait)


def exchange(port: int, data: bytes | Iterable[bytes], responses: int | None = None,
             timeout: float = 5.0) -> RawExchange:
    """Open a connection, send `data` (one write, or one write per piece), then read as `RawConnection.read`."""
    with RawConnection(port) as conn:
        for piece in [data] if isinstance(data, bytes) else data:
            if not conn.send(piece):
                break
        return conn.read(responses, timeout)


def head_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """The header fields of a request head exactly as sent (name lower-cased, value after `: ` untouched)."""
    lines = head.split(b"\r\n")[1:]
    fields = []
    for line in lines:
        if line:
            name, _, value = line.partition(b":")
            fields.append((name.lower(), value[1:] if value[:1] == b" " else value))
    return fields


def assert_refused(result: RawExchange, status: int, *kinds: str) -> dict[str, Any]:
    """The gateway answered with one JSON refusal of `status` (its type one of `kinds`) and closed the
    connection; returns the refusal's body."""
    assert result.closed, f"the connection was left open after {result.data!r}"
    response = result.response
    assert response.status == status, result.data
    body = response.json()
    assert set(body) == {"error", "type", "request_id"}, body
    assert body["type"] in kinds, body
    assert response.header("connection") == ["close"]
    assert response.header("content-type") == ["application/json"]
    return body  # type: ignore[no-any-return]


def send_refused(port: int, upstream: UpstreamServer, data: bytes | Iterable[bytes], status: int,
                 *kinds: str) -> RawExchange:
    """Send `data` (one write, or one write per piece) on a new connection: the gateway refuses it (see
    `assert_refused`) and forwards nothing."""
    before = len(upstream.requests)
    result = exchange(port, data)
    assert_refused(result, status, *kinds)
    assert len(upstream.requests) == before, upstream.requests[before:]
    return result


def send_served(port: int, upstream: UpstreamServer, data: bytes) -> SeenRequest:
    """Send `data` on a new connection: the gateway answers 200 after forwarding one request, which is returned
    as the backend saw it."""
    before = len(upstream.requests)
    result = exchange(port, data, responses=1)
    assert result.response.status == 200, result.data
    assert len(upstream.requests) == before + 1
    return upstream.requests[-1]
