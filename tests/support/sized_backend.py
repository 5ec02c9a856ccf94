"""A loopback HTTP/1.1 backend whose latency depends on the request body's size: `small_ms` for bodies under
`threshold` bytes, `large_ms` for the others. Two of them with the delays swapped make a workload where which
backend is fast depends on the request (what `latency_prediction` must learn and `latency_aware` cannot)."""
from __future__ import annotations

import asyncio
import threading

from tests.support.background import start_thread


class SizedBackend:
    """`with SizedBackend(small_ms=5, large_ms=60) as backend:` serves on `backend.port` from a thread."""

    def __init__(self, small_ms: float, large_ms: float, threshold: int = 1024) -> None:
        self.small_ms = small_ms
        self.large_ms = large_ms
        self.threshold = threshold
        self.port = 0
        self.served = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sized-backend", daemon=True)

    def __enter__(self) -> SizedBackend:
        start_thread(self._thread, self._ready, "the sized backend")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        self._server.close()
        # Connections still open end here, while the loop can close them (not when their coroutines are collected).
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                delay = self.small_ms if length < self.threshold else self.large_ms
                await asyncio.sleep(delay / 1000)
                self.served += 1
                body = f'{{"port": {self.port}, "length": {length}}}'.encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
