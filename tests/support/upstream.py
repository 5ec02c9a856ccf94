"""A real HTTP/1.1 backend on 127.0.0.1 for the suite: raw asyncio streams in a background thread.

Paths (anything else echoes the request as JSON):
  /cookies            several Set-Cookie and X-Foo fields
  /hop                hop-by-hop fields, a field named in Connection, and the backend's own X-Request-ID
  /stream?bytes=N     N bytes of PATTERN (Content-Length; add &chunked=1 for chunked)
  /upload             reads a body of any size, answers {"length", "sha256"}; with ?stall=1 it stops reading
                      after the first MiB until `upload_gate` is set (at most 2 s), like a slow backend
  /status/NNN         an empty answer with that status
  /eof-body           a body that ends when the connection closes (no Content-Length, no chunking)
  /hang               reads the request, never answers
  /slow?ms=N          echoes the request after N milliseconds
  /reset              resets the connection instead of answering
  /reset-mid-body     sends the head and part of the body, then resets
  /stall-mid-body     sends the head and part of the body, then nothing more
  /garbage            answers with bytes that are not HTTP
  /surplus            answers, then sends a second response nobody asked for
  /drop-next          answers, then drops the next request on the same connection unanswered (stale keep-alive)
  /status/NNN?retry_after=S   adds Retry-After: S
  /respond?status=N&header=Name:Value&header=...&body=TEXT&bytes=N&seq=1
                      an answer made to order: status, fields, and TEXT or N bytes of PATTERN as the body;
                      with seq=1 the body ends with "#" and how many /respond requests came so far (to tell a
                      stored answer from a fresh one)
  /drip?chunks=N&size=S&gap_ms=M&type=T   a chunked body of N pieces of S bytes ("a"*S) M ms apart, typed T;
                      `drip_done` is set once the last piece is written

Switches for every request, settable from the test thread at any time:
  delay_ms = N        answer N milliseconds late (a slow backend)
  hang = True         read requests, never answer (a hung backend)
  fail(status, headers, times=None)   answer with that status (every request, or the next `times`); recover()
  kill() / revive()   die now (stop listening, drop every connection) / come back on the same port

Echo answers carry the backend's port in the JSON ("port"), so a test can tell who answered.
"""
from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.support.background import start_thread

PATTERN_BLOCK = bytes(range(256)) * 256  # 64 KiB; bodies are prefixes of this block repeated


def pattern(size: int) -> bytes:
    """The first `size` bytes of the stream pattern (for small bodies)."""
    blocks, rest = divmod(size, len(PATTERN_BLOCK))
    return PATTERN_BLOCK * blocks + PATTERN_BLOCK[:rest]


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in pattern_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def pattern_chunks(size: int, chunk: int = 1 << 20) -> Any:
    """The pattern as chunks of at most `chunk` bytes (a multiple of the block), without holding it all."""
    block = PATTERN_BLOCK * (chunk // len(PATTERN_BLOCK))
    view = memoryview(block)
    while size > 0:
        take = min(size, len(block))
        yield view[:take]
        size -= take


@dataclass
class SeenRequest:
    """A request as the backend received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    connection: int  # which accepted connection (1-based) carried it
    head: bytes = b""  # the exact bytes of the request line and header section, as received
    body: bytearray = field(default_factory=bytearray)  # the body's first MiB, de-chunked

    KEPT_BODY = 1 << 20

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class UpstreamServer:
    """Start with `with UpstreamServer() as upstream:`; `upstream.port` is the ephemeral port."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[SeenRequest] = field(default_factory=list)
    connections: int = 0
    closed_connections: int = 0
    bytes_streamed: int = 0
    stream_stalled: threading.Event = field(default_factory=threading.Event)
    upload_gate: threading.Event = field(default_factory=threading.Event)
    ssl_context: ssl.SSLContext | None = None  # serve HTTPS with this context
    delay_ms: int = 0
    hang: bool = False
    drip_done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-upstream", daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._failure: tuple[int, list[tuple[str, str]]] | None = None
        self._failures_left: int | None = None

    def __enter__(self) -> UpstreamServer:
        start_thread(self._thread, self._ready, "test upstream")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def wait_until(self, condition: Callable[[UpstreamServer], bool], timeout: float = 10.0) -> bool:
        """Block until `condition(self)` holds (checked whenever the server's counters change)."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout)

    def count(self, method: str | None = None) -> int:
        """Requests received so far (of one method, when given)."""
        return sum(1 for request in list(self.requests) if method is None or request.method == method)

    def fail(self, status: int, headers: list[tuple[str, str]] | None = None, times: int | None = None) -> None:
        """Answer requests with `status` (and `headers`): all of them, or only the next `times`."""
        self._failures_left = times
        self._failure = (status, list(headers or []))

    def recover(self) -> None:
        """Stop failing, hanging and delaying: answer normally again."""
        self._failure = None
        self.hang = False
        self.delay_ms = 0

    def kill(self) -> None:
        """Die now: stop listening (connections are refused) and drop every open connection."""
        self._on_loop(self._kill())

    def revive(self) -> None:
        """Come back on the same port."""
        self._on_loop(self._listen())

    def _on_loop(self, coroutine: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    def _take_failure(self) -> tuple[int, list[tuple[str, str]]] | None:
        failure = self._failure
        if failure is not None and self._failures_left is not None:
            self._failures_left -= 1
            if self._failures_left <= 0:
                self._failure = None
        return failure

    def _changed_now(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._listen()
        self._ready.set()
        await self._stop.wait()
        await self._kill()
        # Let every handler see its connection end, so none is cancelled mid-read at loop shutdown.
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)  # type: ignore[arg-type]
        handler.add_done_callback(self._handlers.discard)  # type: ignore[arg-type]
        self._writers.add(writer)
        self._changed_now()
        drop_next = False
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
                request = SeenRequest(method, target, headers, number, head)  # type: ignore[arg-type]
                self.requests.append(request)
                self._changed_now()
                if drop_next:
                    writer.transport.abort()
                    return
                keep_going = await self._handle(request, reader, writer)
                drop_next = request.target.startswith("/drop-next")
                if not keep_going:
                    return
        finally:
            self._writers.discard(writer)
            writer.close()
            self.closed_connections += 1
            self._changed_now()

    async def _handle(self, request: SeenRequest, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        path, _, query = request.target.partition("?")
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        if self.hang:
            await reader.read()  # until the proxy gives up and closes
            return False
        if path == "/upload":
            gate = self.upload_gate if params.get("stall") == "1" else None
            length, digest = await _consume_body(request, reader, gate)
            return await _answer(writer, 200, json.dumps({"length": length, "sha256": digest}).encode())
        body_length, _ = await _consume_body(request, reader)
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)
        failure = self._take_failure()
        if failure is not None:
            return await _answer(writer, failure[0], b"failing on purpose", failure[1])
        if path == "/slow":
            await asyncio.sleep(int(params.get("ms", "1000")) / 1000)
        if path == "/hang":
            await reader.read()  # until the proxy gives up and closes
            return False
        if path == "/reset":
            _reset(writer)
            return False
        if path == "/garbage":
            writer.write(b"THIS IS NOT HTTP\r\n\r\n")
            await writer.drain()
            return False
        if path == "/reset-mid-body":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 1000)
            await writer.drain()
            _reset(writer)
            return False
        if path == "/stall-mid-body":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 1000)
            await writer.drain()
            await reader.read()
            return False
        if path == "/surplus":
            response = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
            writer.write(response + b"first" + response + b"extra")
            await writer.drain()
            return True
        if path == "/cookies":
            extra = [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"), ("X-Foo", "one"),
                     ("X-Foo", "two")]
            return await _answer(writer, 200, b"cookies", extra)
        if path == "/hop":
            extra = [("Connection", "keep-alive, X-Secret"), ("X-Secret", "hidden"), ("Keep-Alive", "timeout=5"),
                     ("Proxy-Authenticate", "Basic"), ("X-Request-ID", "from-backend"), ("X-Kept", "yes")]
            return await _answer(writer, 200, b"hop", extra)
        if path.startswith("/status/"):
            extra = [("Retry-After", params["retry_after"])] if "retry_after" in params else []
            return await _answer(writer, int(path.rsplit("/", 1)[1]), b"", extra)
        if path == "/eof-body":
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
            await writer.drain()
            return False
        if path == "/stream":
            return await self._stream(writer, int(params.get("bytes", "0")), params.get("chunked") == "1")
        if path == "/respond":
            return await self._respond(writer, query, request.method == "HEAD")
        if path == "/drip":
            return await self._drip(writer, params)
        echo = {
            "method": request.method, "path": path, "query": query, "headers": request.headers,
            "body_length": body_length, "connection": request.connection, "port": self.port,
        }
        return await _answer(writer, 200, json.dumps(echo).encode(), [("Content-Type", "application/json")],
                             head_only=request.method == "HEAD")

    async def _respond(self, writer: asyncio.StreamWriter, query: str, head_only: bool) -> bool:
        fields = parse_qs(query, keep_blank_values=True)
        headers = [tuple(item.split(":", 1)) for item in fields.get("header", [])]
        body = pattern(int(fields["bytes"][0])) if "bytes" in fields else fields.get("body", [""])[0].encode()
        if fields.get("seq") == ["1"]:
            body += b"#%d" % sum(1 for seen in list(self.requests) if seen.target.startswith("/respond"))
        status = int(fields.get("status", ["200"])[0])
        return await _answer(writer, status, body, [(n.strip(), v.strip()) for n, v in headers],  # type: ignore
                             head_only=head_only)

    async def _drip(self, writer: asyncio.StreamWriter, params: dict[str, str]) -> bool:
        chunks, size = int(params.get("chunks", "5")), int(params.get("size", "2000"))
        gap = int(params.get("gap_ms", "100")) / 1000
        content_type = params.get("type", "text/plain")
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
                     .encode())
        try:
            for index in range(chunks):
                if index:
                    await asyncio.sleep(gap)
                writer.write(b"%x\r\n%s\r\n" % (size, b"a" * size))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            return False
        finally:
            self.drip_done.set()
        return True

    async def _stream(self, writer: asyncio.StreamWriter, size: int, chunked: bool) -> bool:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        writer.write(f"HTTP/1.1 200 OK\r\n{framing}\r\n\r\n".encode())
        _, high = writer.transport.get_write_buffer_limits()
        try:
            for chunk in pattern_chunks(size, 256 * 1024):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                self.bytes_streamed += len(chunk)
                if writer.transport.get_write_buffer_size() > high:
                    self.stream_stalled.set()  # the reader stopped keeping up: the socket is full
                await writer.drain()
            if chunked:
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            return False
        return True


def _keep(request: SeenRequest, chunk: bytes) -> None:
    if len(request.body) < request.KEPT_BODY:
        request.body += chunk[: request.KEPT_BODY - len(request.body)]


async def _consume_body(request: SeenRequest, reader: asyncio.StreamReader,
                        gate: threading.Event | None = None) -> tuple[int, str]:
    digest = hashlib.sha256()
    length = 0
    content_length = request.header("content-length")
    if content_length:
        remaining = int(content_length[0])
        while remaining:
            if gate is not None and length >= 1 << 20:
                await asyncio.to_thread(gate.wait, 2.0)
                gate = None
            chunk = await reader.read(min(remaining, 1 << 20))
            if not chunk:
                raise ConnectionError("body cut short")
            _keep(request, chunk)
            digest.update(chunk)
            length += len(chunk)
            remaining -= len(chunk)
    elif "chunked" in ",".join(request.header("transfer-encoding")).lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunk = await reader.readexactly(size)
            await reader.readexactly(2)
            _keep(request, chunk)
            digest.update(chunk)
            length += size
    return length, digest.hexdigest()


async def _answer(writer: asyncio.StreamWriter, status: int, body: bytes,
                  headers: list[tuple[str, str]] | None = None, head_only: bool = False) -> bool:
    lines = [f"HTTP/1.1 {status} Whatever"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    if status not in (204, 304):
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head_only or status in (204, 304) else body))
    await writer.drain()
    return True


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends RST
    writer.transport.abort()


def refused_port() -> int:
    """A loopback port with nothing listening (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BlackholeListener:
    """A listening socket whose accept queue is full, so new connections hang in SYN-SENT: a connect timeout.

    Linux drops SYNs for a listener whose accept queue is full; we fill it with connections nobody accepts.
    """

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.fillers: list[socket.socket] = []
        self.port = 0

    def __enter__(self) -> BlackholeListener:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        for _ in range(64):
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(("127.0.0.1", self.port))
            except TimeoutError:
                filler.close()
                return self  # this one hung: the queue is full
            self.fillers.append(filler)
        raise RuntimeError("could not fill the accept queue")

    def __exit__(self, *exc: object) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()


def self_signed_pem() -> tuple[bytes, bytes]:
    """A fresh self-signed certificate for 127.0.0.1, its own CA: (certificate PEM, private key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A fresh self-signed certificate for 127.0.0.1: (server context, client context trusting only it)."""
    cert_pem, key_pem = self_signed_pem()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
        cert_file.write(cert_pem)
        cert_file.flush()
        key_file.write(key_pem)
        key_file.flush()
        server.load_cert_chain(cert_file.name, key_file.name)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client
