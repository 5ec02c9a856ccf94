"""uvicorn's httptools protocol with its socket writes coalesced per event-loop turn.

uvicorn writes a response's head and its body with two `transport.write` calls, and uvloop sends each at once:
two system calls per response where one would do. The protocol here hands uvicorn a transport that gathers the
writes made during one turn of the loop and sends them together at its end (`loop.call_soon`), so a head and
its body, or pipelined answers, leave in one `send`. Anything that must not wait (more than FLUSH_AT bytes
gathered, `close`, `write_eof`) is sent at once; the real transport's flow control is unchanged, since data
waits here for one loop turn at most.
"""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_AT = 64 * 1024  # gathered bytes that are sent without waiting for the end of the loop turn


class CoalescingTransport:
    """A transport that passes everything to `transport` but gathers `write`s until the loop turn ends."""

    __slots__ = ("transport", "loop", "_parts", "_size", "_scheduled")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self._parts: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._parts.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self.flush)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what was gathered (nothing once the connection is closing: there is nobody to send it to)."""
        self._scheduled = False
        parts = self._parts
        if not parts:
            return
        self._parts = []
        self._size = 0
        if not self.transport.is_closing():
            self.transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def get_write_buffer_size(self) -> int:
        return self._size + self.transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._parts = []
        self._size = 0
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        # Everything else (pause_reading, get_extra_info, is_closing, set_protocol...) is the real transport's.
        return getattr(self.transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol writing through a CoalescingTransport (and so do WebSocket protocols it upgrades to)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
