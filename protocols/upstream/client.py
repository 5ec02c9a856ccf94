"""The pooled HTTP/1.1 upstream client: one pool per backend, streaming both ways, one retry for stale keep-alive."""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

from protocols.errors import UpstreamReset
from protocols.table import BackendSpec
from protocols.upstream.connection import HOP_BY_HOP, UpstreamConnection
from protocols.upstream.pool import Pool
from protocols.upstream.tls import backend_context

Headers = list[tuple[bytes, bytes]]
Body = bytes | AsyncIterator[bytes]

# Below the 5 s keep-alive of uvicorn, Node.js and many others, so we usually close a quiet connection first.
DEFAULT_IDLE_TIMEOUT = 4.0
_CHUNKED = b"transfer-encoding: chunked\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class UpstreamResponse:
    """A response whose head has arrived; iterate it (or call `body()` when `complete`) for the body.

    The connection returns to its pool only when the body was read to the end and keep-alive allows; `close()`
    drops it otherwise. `headers` are end-to-end fields only: hop-by-hop ones are already gone.
    """

    __slots__ = ("status", "headers", "_pool", "_conn", "_pump", "_finished")

    def __init__(self, pool: Pool, conn: UpstreamConnection, pump: asyncio.Task[None] | None) -> None:
        self.status = conn.status
        self.headers: Headers = conn.headers
        self._pool = pool
        self._conn = conn
        self._pump = pump
        self._finished = False

    @property
    def complete(self) -> bool:
        """True when the whole body has already arrived, so `body()` returns without waiting."""
        return self._conn.complete and self._conn.error is None

    def body(self) -> bytes:
        """The whole body of a complete response; the connection is released."""
        data = self._conn.take_body()
        self._finish()
        return data

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        try:
            data = await self._conn.read()
        except BaseException:
            self.close()
            raise
        if data:
            return data
        self._finish()
        raise StopAsyncIteration

    def cancel(self, exc: BaseException) -> None:
        """End the exchange from outside (the client left): a pending read raises `exc`, the connection closes."""
        if not self._finished:
            self._conn.fail(exc)

    def close(self) -> None:
        """Give up on the rest of the exchange: the connection is closed, never reused."""
        if not self._finished:
            self._finished = True
            self._conn.active = False
            self._conn.abort()
            if self._pump is not None:
                self._pump.cancel()

    def _finish(self) -> None:
        if self._finished:
            return
        conn = self._conn
        pump = self._pump
        if pump is not None and (not pump.done() or conn.error is not None):
            # The backend answered before reading the whole request: the connection is mid-request.
            self.close()
            return
        self._finished = True
        if conn.keep_alive and conn.error is None:
            self._pool.release(conn)
        else:
            conn.active = False
            conn.abort()


class UpstreamClient:
    """Pools of keep-alive connections to every backend this process talks to; one per process.

    Pools bind to the running event loop on first use, so the client can be built at import time.
    """

    def __init__(self, pool_size: int = 256, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None,
                 strip_response_headers: frozenset[bytes] = HOP_BY_HOP) -> None:
        self.pool_size = pool_size
        self.idle_timeout = idle_timeout
        self.strip_response_headers = strip_response_headers | HOP_BY_HOP
        self._ssl_context = ssl_context
        self._pools: dict[tuple[str, str, int, str, str, str, bool], Pool] = {}
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}

    def pool(self, backend: BackendSpec) -> Pool:
        """The pool for this backend's (scheme, host, port, server name) and TLS options, created on first use."""
        key = (backend.scheme, backend.host, backend.port, backend.server_name, backend.tls_server_name,
               backend.tls_ca, backend.tls_verify)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = Pool(
                backend.scheme, backend.host, backend.port, max_idle=self.pool_size,
                idle_timeout=self.idle_timeout, strip_headers=self.strip_response_headers,
                ssl_context=self.tls_context(backend) if backend.is_tls else None, server_name=backend.server_name,
                tls_name=backend.tls_server_name,
            )
        return pool

    async def request(self, pool: Pool, method: bytes, target: bytes, headers: Headers, body: Body = b"",
                      content_length: int | None = None, *, connect_timeout: float,
                      read_timeout: float) -> UpstreamResponse:
        """Send one request and return once the response head has arrived.

        `headers` are sent as given (the caller has already removed hop-by-hop fields and set Host); framing is
        ours: Content-Length when `content_length` is known or the body is bytes, otherwise chunked. Raises one
        of protocols.errors' upstream errors, or whatever the body iterator raised.
        """
        streamed = not isinstance(body, bytes)
        if content_length is not None:
            framing = b"content-length: %d\r\n" % content_length
        elif isinstance(body, bytes):
            framing = b"content-length: %d\r\n" % len(body) if body else b""
        else:
            framing = _CHUNKED
        parts = [method, b" ", target, b" HTTP/1.1\r\n"]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(framing)
        parts.append(b"\r\n")
        head = b"".join(parts)
        chunked = framing is _CHUNKED
        head_only = method == b"HEAD"
        conn = pool.take()
        fresh = conn is None
        while True:
            if conn is None:
                conn = await pool.connect(connect_timeout)
            conn.begin(head_only)
            pump: asyncio.Task[None] | None = None
            if isinstance(body, bytes):
                conn.write_soon(head + body if body else head)
                conn.request_sent(read_timeout)
            else:
                conn.write(head)
                pump = asyncio.get_running_loop().create_task(_pump(conn, body, chunked, read_timeout))
            try:
                # Awaited here rather than in a helper coroutine: every frame between the task and the future
                # is paid again on each resume.
                while not conn.head_done and conn.error is None:
                    await conn.waiter("the response head" if conn.request_done else None)
                if conn.error is not None:
                    raise conn.error
            except UpstreamReset:
                _drop(conn, pump)
                # The backend closed this kept-alive connection as we reused it (the stale keep-alive race).
                # Only a request without a body goes again, once, on a fresh connection: one whose body was
                # already taken from the client might have been acted on, and must not run twice.
                if fresh or conn.got_bytes or streamed or body:
                    raise
                fresh = True
                conn = None
                continue
            except BaseException:
                _drop(conn, pump)
                raise
            return UpstreamResponse(pool, conn, pump)

    async def aclose(self) -> None:
        """Close every idle connection; call at shutdown on the serving loop."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def tls_context(self, backend: BackendSpec) -> ssl.SSLContext:
        """The client context for a TLS backend: one per distinct (CA bundle, verify) of the backends' `tls`
        options. Verification is on unless the backend turns it off; its `tls_ca` replaces the system's trust
        (or the client's own context, for backends without one). ssl.SSLError or ValueError on a bad bundle."""
        key = (backend.tls_ca, backend.tls_verify)
        context = self._contexts.get(key)
        if context is None:
            if not backend.tls_ca and backend.tls_verify and self._ssl_context is not None:
                context = self._ssl_context
            else:
                context = backend_context(backend.tls_ca, backend.tls_verify)
            self._contexts[key] = context
        return context


def _drop(conn: UpstreamConnection, pump: asyncio.Task[None] | None) -> None:
    conn.active = False
    conn.abort()
    if pump is not None:
        pump.cancel()


async def _pump(conn: UpstreamConnection, chunks: AsyncIterator[bytes], chunked: bool, read_timeout: float) -> None:
    """Copy the request body as it arrives, waiting whenever the backend's socket is full (backpressure)."""
    try:
        async for chunk in chunks:
            if conn.error is not None:
                return
            if not chunk:
                continue
            conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if conn.writing_paused:
                await conn.drain(read_timeout)
        if conn.error is None:
            if chunked:
                conn.write(_LAST_CHUNK)
            conn.request_sent(read_timeout)
    except Exception as exc:  # noqa: BLE001 - handed to whoever waits on the connection, not swallowed
        conn.fail(exc)
