"""The synthetic attack traffic (tests.support.attack_traffic) sent through a real gateway, time-compressed, to an
upstream on loopback that answers each request with the status and size the traffic says.

Each request carries its client's address in X-Forwarded-For (the gateway trusts 127.0.0.1) and its credential as
an X-API-Key (the gateway names such a client `key:<16 hex digits of its SHA-256>`, `gateway_client`); its path
becomes one segment under the route's `/shop/{page}`, so the distinct paths stay distinct."""
from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.attack_traffic import Request

ROUTE_PATH = "/shop/{page}"


def gateway_client(client: str) -> str:
    """The name the gateway gives a generator's client: credentials travel as API keys."""
    if client.startswith("ip:"):
        return client
    return "key:" + hashlib.sha256(client.encode()).hexdigest()[:16]


def gateway_path(path: str) -> str:
    return "/shop/" + path.strip("/").replace("/", "~")


@dataclass(frozen=True, slots=True)
class Answered:
    """One replayed request: when it was due and answered (seconds after the replay began), what came back."""

    request: Request
    due: float
    answered: float
    status: int
    verdict: str | None  # X-Rusta-Verdict


class StatusUpstream:
    """An HTTP/1.1 server on loopback answering `X-Want-Status` with `X-Want-Bytes` bytes (keep-alive)."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
                fields = {name.strip().lower(): value.strip() for name, value in fields.items()}
                if int(fields.get(b"content-length", b"0")):
                    await reader.readexactly(int(fields[b"content-length"]))
                status = int(fields.get(b"x-want-status", b"200"))
                body = b"x" * int(fields.get(b"x-want-bytes", b"0"))
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                             % (status, len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            fields[name.strip().lower()] = value.strip()
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(fields.get(b"content-length", b"0")))
    return status, fields


async def _replay(port: int, requests: Sequence[Request], speed: float, lanes: int) -> list[Answered]:
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue[tuple[Request, float] | None]] = [asyncio.Queue() for _ in range(lanes)]
    answered: list[Answered] = []
    began = loop.time()

    async def lane(queue: asyncio.Queue[tuple[Request, float] | None]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            request, due = item
            key = f"X-API-Key: {request.credential}\r\n" if request.credential else ""
            writer.write((f"{request.method} {gateway_path(request.path)} HTTP/1.1\r\nHost: shop.test\r\n"
                          f"X-Forwarded-For: {request.address}\r\n{key}X-Want-Status: {request.status}\r\n"
                          f"X-Want-Bytes: {min(request.bytes, 4096)}\r\nContent-Length: 0\r\n\r\n").encode())
            status, fields = await _read_answer(reader)
            verdict = fields.get(b"x-rusta-verdict")
            answered.append(Answered(request, due, loop.time() - began, status,
                                     verdict.decode() if verdict else None))
        writer.close()

    workers = [asyncio.create_task(lane(queue)) for queue in queues]
    for index, request in enumerate(requests):
        due = request.t / speed
        delay = due - (loop.time() - began)
        if delay > 0:
            await asyncio.sleep(delay)
        queues[index % lanes].put_nowait((request, due))
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return answered


def replay(port: int, requests: Sequence[Request], *, speed: float = 10.0, lanes: int = 48) -> list[Answered]:
    """Send `requests` (sorted by time) to the gateway on `port`, `speed` times faster than their times say."""
    return asyncio.run(_replay(port, requests, speed, lanes))


@contextmanager
def status_upstream() -> Iterator[StatusUpstream]:
    with StatusUpstream() as upstream:
        yield upstream


def wall_clock_aligned(window_s: float) -> None:
    """Wait for the start of the next aligned window, so the replay's windows line up with the gateway's."""
    now = time.time()
    time.sleep(window_s - now % window_s)
