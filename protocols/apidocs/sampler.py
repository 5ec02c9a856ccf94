"""The sampler of a route's `api_docs` block, on the request path: which requests are sampled, and what a sampled
one keeps (the raw material of its shapes) while it passes, without delaying or changing it.

A request not sampled costs one `random() < rate` (ProxyApp._prepare). A sampled one gets a DocsSample: the
proxy sends its answer through it (it notes the status and content type and copies the first `max_body_bytes` of
a JSON body as it streams by), hands it the request body (`take_request_body`: a body already read whole is kept
as is, a streamed one is copied up to the cap while it goes upstream), and at the end `finish` puts the sample
in the process's SampleBuffer. Nothing is parsed here: the worker's flusher takes the buffer every second and
learns the shapes on its own thread (protocols.apidocs.learn).
"""
from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from protocols.apidocs.config import DocsPolicy
from protocols.table import CompiledRoute

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]

MAX_PENDING_BYTES = 8 << 20  # bodies kept between two flusher ticks; later samples are dropped (and counted)
MAX_PENDING = 10_000

_JSON = (b"application/json", b"+json")


def is_json(content_type: bytes) -> bool:
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind.startswith(_JSON[0]) or kind.endswith(_JSON[1])


def header(headers: Any, name: bytes) -> bytes:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value)
    return b""


def sampled(policy: DocsPolicy, draw: Callable[[], float] = random.random) -> bool:
    """Whether this request is sampled at the policy's rate."""
    return draw() < policy.sample_rate


@dataclass(slots=True)
class RawSample:
    """What one sampled exchange left: enough to learn its shapes, nothing parsed yet. A body is None when it
    was not JSON or not sent; `*_over` says it was longer than the cap (its shape is then unknown)."""

    route: str
    pattern: tuple[str | None, ...]  # the route's parameter names by segment, None for static ones
    method: str
    path: str
    query: bytes
    request_type: str
    request_body: bytes | None
    request_over: bool
    status: int
    response_type: str
    response_body: bytes | None
    response_over: bool

    @property
    def size(self) -> int:
        return len(self.request_body or b"") + len(self.response_body or b"") + len(self.query)


class SampleBuffer:
    """The samples of one process since the flusher last took them, bounded by MAX_PENDING and
    MAX_PENDING_BYTES (samples beyond are dropped and counted in `dropped`)."""

    def __init__(self, max_bytes: int = MAX_PENDING_BYTES, max_count: int = MAX_PENDING) -> None:
        self.max_bytes = max_bytes
        self.max_count = max_count
        self.samples: list[RawSample] = []
        self.bytes = 0
        self.dropped = 0

    def add(self, sample: RawSample) -> None:
        size = sample.size
        if len(self.samples) >= self.max_count or self.bytes + size > self.max_bytes:
            self.dropped += 1
            return
        self.samples.append(sample)
        self.bytes += size

    def take(self) -> list[RawSample]:
        """The samples so far, and an empty buffer (on the loop: the flusher's tick)."""
        taken, self.samples, self.bytes = self.samples, [], 0
        return taken


samples = SampleBuffer()  # the process's buffer, which the worker's flusher takes every second


class DocsSample:
    """One sampled exchange: an ASGI `send` around the request's own, and its request's record."""

    __slots__ = ("send", "cap", "route", "pattern", "method", "path", "query", "request_type", "request_body",
                 "request_over", "status", "response_type", "response_body", "response_over", "_keep")

    def __init__(self, send: Send, policy: DocsPolicy, route: CompiledRoute, method: str, path: str, query: bytes,
                 request_headers: Any) -> None:
        self.send = send
        self.cap = policy.max_body_bytes
        self.route = route.name
        self.pattern = tuple(s.text if s.is_param else None for s in route.segments)
        self.method = method
        self.path = path
        self.query = query
        request_type = header(request_headers, b"content-type")
        self.request_type = request_type.split(b";", 1)[0].strip().lower().decode("latin-1")
        self.request_body: bytes | None = None
        self.request_over = False
        self.status = 0
        self.response_type = ""
        self.response_body: bytearray | None = None
        self.response_over = False
        self._keep = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers") or ()
            content_type = header(headers, b"content-type")
            self.response_type = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
            # A compressed body cannot be read as JSON here: its shape is unknown.
            encoded = header(headers, b"content-encoding") not in (b"", b"identity")
            self._keep = is_json(content_type) and not encoded
            self.response_over = encoded and is_json(content_type)
            self.response_body = bytearray() if self._keep else None
        elif kind == "http.response.body" and self._keep:
            chunk = message.get("body", b"")
            kept = self.response_body
            assert kept is not None
            room = self.cap - len(kept)
            if len(chunk) > room:
                self._keep = False
                self.response_over = True
                self.response_body = None
            elif chunk:
                kept += chunk
        await self.send(message)

    def take_request_body(self, body: bytes | AsyncIterator[bytes]) -> bytes | AsyncIterator[bytes]:
        """The request body to send upstream: the same bytes, or the same stream copied up to the cap."""
        if not is_json(self.request_type.encode("latin-1")):
            return body
        if isinstance(body, bytes):
            if len(body) > self.cap:
                self.request_over = True
            else:
                self.request_body = body
            return body
        return self._copy(body)

    async def _copy(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        kept: bytearray | None = bytearray()
        async for chunk in body:
            if kept is not None:
                if len(kept) + len(chunk) > self.cap:
                    kept = None
                    self.request_over = True
                else:
                    kept += chunk
            yield chunk
        if kept is not None:
            self.request_body = bytes(kept)

    def finish(self, buffer: SampleBuffer = samples) -> None:
        """The exchange is over: keep its sample when the backend answered (an answer of the gateway's own, a
        refusal or an upstream error, documents nothing of the API)."""
        if not self.status:
            return
        body = self.response_body
        buffer.add(RawSample(self.route, self.pattern, self.method, self.path, self.query, self.request_type,
                             self.request_body, self.request_over, self.status, self.response_type,
                             bytes(body) if body is not None else None, self.response_over))
