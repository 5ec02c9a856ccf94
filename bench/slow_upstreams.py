"""Tiny HTTP/1.1 upstreams for the slow-backend scenarios: one process, one port each, the last ones delayed.

`python -m bench.slow_upstreams --delay-ms 20 --slow 1 PORT PORT PORT` serves the bench upstream's ~100-byte JSON
on every port, keep-alive; the last `--slow` ports answer each request `--delay-ms` late (timers, so a slow
port holds no task per request and its answers leave in order). Listens on 127.0.0.1 only, until SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import signal

import uvloop

BODY = (b'{"id":4711,"status":"ok","service":"bench-upstream","tags":["alpha","beta"],'
        b'"note":"hello from upstream"}')
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: keep-alive\r\n\r\n" % len(BODY)) + BODY
MAX_HEAD = 64 * 1024  # bytes of request head kept while waiting for its end; more closes the connection


class Upstream(asyncio.Protocol):
    """Answers every request head (bodies are not expected: the bench only sends GET) with RESPONSE."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buffer = self.buffer + data
        answers = buffer.count(b"\r\n\r\n")
        if answers:
            buffer = buffer[buffer.rindex(b"\r\n\r\n") + 4:]
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._write, RESPONSE * answers)
            else:
                self.transport.write(RESPONSE * answers)
        if len(buffer) > MAX_HEAD:
            self.transport.close()
        self.buffer = buffer

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(ports: list[int], slow: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    servers = []
    for index, port in enumerate(ports):
        wait = delay if index >= len(ports) - slow else 0.0
        servers.append(await loop.create_server(functools.partial(Upstream, wait), "127.0.0.1", port, backlog=4096))
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ports", type=int, nargs="+")
    parser.add_argument("--slow", type=int, default=1, help="how many of the last ports are slow")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    uvloop.run(serve(args.ports, args.slow, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
