"""The upstream HTTP/2 client: connections per backend multiplexing streams, a new one when the old is full,
told to go away, or dead. `http` backends are spoken to in cleartext with prior knowledge, `https` ones over TLS
with ALPN h2, verified with the backend's own CA bundle and server name when it has them."""
from __future__ import annotations

import asyncio
import socket
import ssl

from protocols.errors import UpstreamConnectTimeout, UpstreamNameNotResolved, UpstreamRefused
from protocols.table import BackendSpec
from protocols.upstream.http2 import IDLE_TIMEOUT, Headers, Http2Connection, Http2Stream
from protocols.upstream.pool import authority
from protocols.upstream.tls import backend_context

Key = tuple[str, str, int, str, str, bool]


class Http2Client:
    """Every HTTP/2 backend connection of this process; one per process, bound to the loop on first use.

    TLS contexts are its own (ALPN h2 is set on them), one per set of backend TLS options: the system's trust
    unless the backend has a CA bundle (`tls_ca`, PEM text), verification unless it turns it off. A connection
    without streams for `idle_timeout` seconds is closed.
    """

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.idle_timeout = idle_timeout
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
        self._connections: dict[Key, list[Http2Connection]] = {}
        self._connecting: dict[Key, asyncio.Future[Http2Connection]] = {}

    async def open(self, backend: BackendSpec, method: bytes, path: bytes, headers: Headers, *,
                   connect_timeout: float, end: bool = False, authority: bytes = b"") -> Http2Stream:
        """A new stream to `backend` carrying this request head (:authority is the backend's own unless
        `authority` is given); raises the gateway's upstream errors
        (UpstreamRefused, UpstreamConnectTimeout, UpstreamNameNotResolved) when no connection can be had."""
        key = (backend.scheme, backend.host, backend.port, backend.tls_server_name or backend.server_name,
               backend.tls_ca, backend.tls_verify)
        while True:
            conns = self._connections.get(key)
            if conns:
                conns[:] = [conn for conn in conns if not conn.closed and not conn.going_away]
                for conn in conns:
                    if conn.has_room:
                        return conn.open_stream(method, path, headers, end, authority)
            pending = self._connecting.get(key)
            if pending is None:
                pending = self._connecting[key] = asyncio.get_running_loop().create_future()
                try:
                    conn = await self._connect(backend, connect_timeout)
                except BaseException as exc:
                    pending.set_exception(exc)
                    pending.exception()  # retrieved here: the waiters raise it themselves
                    raise
                finally:
                    del self._connecting[key]
                pending.set_result(conn)
                self._connections.setdefault(key, []).append(conn)
            else:
                await asyncio.shield(pending)

    async def aclose(self) -> None:
        """Close every connection (GOAWAY, then the socket); call at shutdown on the serving loop."""
        for conns in self._connections.values():
            for conn in conns:
                conn.close()
        self._connections.clear()

    async def _connect(self, backend: BackendSpec, timeout: float) -> Http2Connection:
        """A new connection whose server's SETTINGS have arrived, with OS and TLS failures as gateway errors."""
        tls = backend.is_tls
        server_name = backend.tls_server_name or backend.server_name or backend.host
        label = authority(backend.host, backend.port)
        shown = authority(backend.server_name or backend.host, backend.port, "https" if tls else "http")
        loop = asyncio.get_running_loop()
        try:
            context = self._tls(backend) if tls else None
        except (ssl.SSLError, ValueError) as exc:  # the control plane's validation normally keeps these out
            raise UpstreamRefused(label, f"its CA bundle does not load ({exc})") from None
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: Http2Connection(label, shown.encode(), b"https" if tls else b"http", self.idle_timeout),
                    backend.host, backend.port, ssl=context,
                    server_hostname=server_name if tls else None,
                )
                if tls:
                    chosen = conn.transport.get_extra_info("ssl_object") if conn.transport else None
                    if chosen is None or chosen.selected_alpn_protocol() != "h2":
                        conn.close()
                        raise UpstreamRefused(label, "TLS did not agree on HTTP/2 (ALPN h2)")
                await conn.ready
        except TimeoutError:
            raise UpstreamConnectTimeout(label, timeout) from None
        except ssl.SSLError as exc:
            raise UpstreamRefused(label, f"TLS handshake failed ({exc.reason or exc})") from None
        except ConnectionRefusedError:
            raise UpstreamRefused(label) from None
        except socket.gaierror as exc:
            raise UpstreamNameNotResolved(label, exc.strerror or str(exc)) from None
        except OSError as exc:
            raise UpstreamRefused(label, exc.strerror or str(exc)) from None
        return conn

    def _tls(self, backend: BackendSpec) -> ssl.SSLContext:
        """The TLS context for this backend's options (its CA bundle, whether to verify), made once per options."""
        key = (backend.tls_ca, backend.tls_verify)
        context = self._contexts.get(key)
        if context is None:
            context = backend_context(backend.tls_ca, backend.tls_verify, alpn=("h2",))
            self._contexts[key] = context
        return context
