"""Keep-alive connections to one backend (scheme, host, port, server name): bounded idle stack, idle timeout,
connect errors."""
from __future__ import annotations

import asyncio
import socket
import ssl

from protocols.errors import UpstreamConnectTimeout, UpstreamNameNotResolved, UpstreamRefused
from protocols.upstream.connection import UpstreamConnection

_DEFAULT_PORTS = {"http": 80, "https": 443}


def authority(host: str, port: int, scheme: str = "") -> str:
    """host:port as it appears in a Host header or an error message (IPv6 in brackets, default port omitted)."""
    shown = f"[{host}]" if ":" in host else host
    if scheme and _DEFAULT_PORTS.get(scheme) == port:
        return shown
    return f"{shown}:{port}"


class Pool:
    """Idle connections to one backend in this process, reused newest first.

    Newest first keeps the busy connections warm and lets the oldest ones age out; idle ones are closed after
    `idle_timeout` so that we, not the backend, usually end a quiet connection (fewer stale keep-alive races).
    `server_name` (a discovered https address's DNS name; "": `host`) is what TLS sends and verifies and what
    the Host field defaults to; `tls_name` (the backend's `tls.server_name`; "": `server_name`) replaces it in
    TLS only (SNI and verification); errors and metrics still name the address (`label`).
    """

    def __init__(self, scheme: str, host: str, port: int, *, max_idle: int, idle_timeout: float,
                 ssl_context: ssl.SSLContext | None, strip_headers: frozenset[bytes], server_name: str = "",
                 tls_name: str = "") -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.server_name = server_name or host
        self.tls_name = tls_name or self.server_name
        self.label = authority(host, port)
        self.host_header = authority(self.server_name, port, scheme).encode()
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.ssl_context = ssl_context
        self.strip_headers = strip_headers
        self.idle: list[UpstreamConnection] = []
        self.closed = False
        self.connections_made = 0
        self._loop = asyncio.get_running_loop()
        self._sweeper: asyncio.TimerHandle | None = None

    def take(self) -> UpstreamConnection | None:
        """The most recently released live connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self, timeout: float) -> UpstreamConnection:
        """A new connection, with OS and TLS failures turned into our gateway errors."""
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self._loop.create_connection(
                    self._new_protocol, self.host, self.port, ssl=self.ssl_context,
                    server_hostname=self.tls_name if self.ssl_context is not None else None,
                )
        except TimeoutError:
            raise UpstreamConnectTimeout(self.label, timeout) from None
        except ssl.SSLError as exc:
            raise UpstreamRefused(self.label, f"TLS handshake failed ({exc.reason or exc})") from None
        except ConnectionRefusedError:
            raise UpstreamRefused(self.label) from None
        except socket.gaierror as exc:  # an OSError too: caught first, the cure is not the same
            raise UpstreamNameNotResolved(self.label, exc.strerror or str(exc)) from None
        except OSError as exc:
            raise UpstreamRefused(self.label, exc.strerror or str(exc)) from None
        self.connections_made += 1
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Keep a connection whose exchange ended cleanly, or close it when the pool is full or closed."""
        conn.active = False
        if self.closed or conn.closed or len(self.idle) >= self.max_idle:
            conn.abort()
            return
        conn.reused = True
        conn.idle_since = self._loop.time()
        self.idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self.idle_timeout, self._sweep)

    def close(self) -> None:
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in self.idle:
            conn.abort()
        self.idle = []

    def _sweep(self) -> None:
        self._sweeper = None
        now = self._loop.time()
        deadline = now - self.idle_timeout
        keep: list[UpstreamConnection] = []
        for conn in self.idle:
            if conn.closed:
                continue
            if conn.idle_since <= deadline:
                conn.abort()
            else:
                keep.append(conn)
        self.idle = keep
        if keep:
            # The stack's bottom is the oldest connection: wake when it expires.
            self._sweeper = self._loop.call_later(keep[0].idle_since - deadline, self._sweep)

    def _new_protocol(self) -> UpstreamConnection:
        return UpstreamConnection(self.label, self.strip_headers)
