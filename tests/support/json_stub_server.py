"""The loopback HTTP/1.1 server under the fake LLM providers (llm_stubs.LlmStub, llm_providers.ProviderStub): serving
on the caller's loop (`async with`) or from a thread of its own (`with`), keep-alive connections, each request read
as its head fields and JSON body, and every connection cut when it stops."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Self

from tests.support.background import start_thread


class JsonStubServer:
    """A subclass answers in `_exchange` (one request: False to close the connection); `read_request` reads one
    request's method, target, lower-cased header fields and JSON body (None when it has none or it is not JSON)."""

    thread_name = "json-stub"

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- serving on the caller's loop -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None
        self._closing = True
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    # --- serving from a thread ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), name=self.thread_name, daemon=True)
        start_thread(self._thread, self._ready, self.thread_name)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        await self._start()
        self._ready.set()
        await self._stop.wait()
        await self._close()

    # --- HTTP/1.1 -------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Ending quietly when the stub closes: asyncio 3.11 logs a cancelled connection handler as an error.
            if not self._closing:
                raise
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        raise NotImplementedError

    @staticmethod
    async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], Any] | None:
        """(method, target, headers, JSON body) of the next request; None when the client closed instead."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        request_line, *fields = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in fields:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return method, target, headers, body
