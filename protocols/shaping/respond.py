"""ResponseShaper: the ASGI `send` a proxied request answers through when its route has shaping.

It relies on the ASGI rule that the response head (`http.response.start`) is only final once sent: until
then it can be rewritten (status mapping, header rules), held back (a JSON body being edited needs its new
Content-Length), or replaced altogether (a stale copy for a failing upstream). Body messages then pass
through the JSON rules (buffered, within the cap), the cache fill (a tee) and the compressor, in that order,
one chunk at a time: only a JSON body being edited is ever held whole.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from protocols.cache.cache import X_CACHE, Filler, Lookup, ResponseCache
from protocols.cache.entry import CachedResponse
from protocols.compression.encoders import Encoder
from protocols.http.headers import answer_head
from protocols.shaping.route import RouteShaping

Headers = list[tuple[bytes, bytes]]
Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
_NO_BODY_STATUSES = frozenset({204, 205, 304})


class ResponseShaper:
    """One request's answer path. `path` is the client's request path (what status conditions match);
    `request_headers` the client's fields (Accept-Encoding, conditional requests, the cache key's values).

    `cache` and `lookup` are set when the route caches and the request is cacheable: answers then carry
    `X-Cache`, and the upstream's answer is stored when it may be. `status` and `bytes_out` tell the access log
    what the client really got; `started` is True once the head went out.
    """

    __slots__ = ("send", "shaping", "method", "path", "request_headers", "request_id", "cache", "lookup",
                 "accept_encoding", "filler", "encoder", "started", "status", "bytes_out", "_held", "_buffer",
                 "_buffered", "_swallow", "outcome", "extra_headers")

    def __init__(self, send: Send, shaping: RouteShaping, method: str, path: str, request_headers: Headers,
                 request_id: bytes = b"", *, cache: ResponseCache | None = None, lookup: Lookup | None = None) -> None:
        self.send = send
        self.shaping = shaping
        self.method = method
        self.path = path
        self.request_headers = request_headers
        self.request_id = request_id
        self.cache = cache
        self.lookup = lookup
        accept = [value for name, value in request_headers if name == b"accept-encoding"]
        self.accept_encoding: bytes | None = b", ".join(accept) if accept else None
        self.filler: Filler | None = None
        self.encoder: Encoder | None = None
        self.started = False
        self.status = 0
        self.bytes_out = 0
        self.outcome = b""  # the X-Cache value sent, if any
        self._held: tuple[int, Headers] | None = None
        self._buffer: list[bytes] | None = None
        self._buffered = 0
        self._swallow = False  # the upstream's answer was replaced by a stale copy: drop what is left of it
        # Fields this exchange adds to an answer from the cache too (the rate limit's RateLimit-*); upstream
        # answers already carry them when forwarding appends them.
        self.extra_headers: Headers | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._on_start(message["status"], list(message.get("headers", [])))
            return
        if self._swallow:
            return
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if self._buffer is not None:
            await self._on_buffered(chunk, more)
            return
        await self._body(chunk, more)

    async def _on_start(self, status: int, headers: Headers) -> None:
        lookup = self.lookup
        if lookup is not None and status >= 500 and lookup.stale is not None:
            self._swallow = True
            await self.answer_from_cache(lookup.stale, b"STALE")
            return
        if lookup is not None and self.cache is not None:
            self.filler = self.cache.filler(lookup, status, headers)
        response = self.shaping.response
        if response is not None:
            status = response.map_status(status, self.method, self.path, headers)
            headers = response.apply_headers(headers)
            if (self.method != "HEAD" and status not in _NO_BODY_STATUSES
                    and response.body_applies(headers)):
                self._held = (status, headers)
                self._buffer = []
                return
        await self._start(status, headers)

    async def _on_buffered(self, chunk: bytes, more: bool) -> None:
        assert self._buffer is not None and self._held is not None
        response = self.shaping.response
        assert response is not None
        self._buffer.append(bytes(chunk))
        self._buffered += len(chunk)
        status, headers = self._held
        if self._buffered > response.max_body_bytes:
            # Longer than the cap after all (a body of unknown length): it goes as it came, from here on streamed.
            data = b"".join(self._buffer)
            self._buffer = None
            await self._start(status, headers)
            await self._body(data, more)
            return
        if more:
            return
        original = b"".join(self._buffer)
        self._buffer = None
        data = response.apply_json(original)
        if data is not original:
            headers = [(n, v) for n, v in headers if n != b"content-length"]
            headers.append((b"content-length", b"%d" % len(data)))
        await self._start(status, headers)
        await self._body(data, False)

    async def _start(self, status: int, headers: Headers) -> None:
        if self.lookup is not None:
            headers.append((X_CACHE, b"MISS"))
            self.outcome = b"MISS"
            if self.cache is not None:
                self.cache.count(self.lookup.route, b"MISS")
        if self.filler is not None:
            self.filler.head(status, headers)
        compression = self.shaping.compression
        if compression is not None:
            self.encoder, headers = compression.start(self.method, status, headers, self.accept_encoding)
        self.status = status
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def _body(self, chunk: bytes, more: bool) -> None:
        filler = self.filler
        if filler is not None:
            filler.feed(chunk)
        encoder = self.encoder
        if encoder is not None:
            chunk = encoder.compress(chunk)
            if not more:
                chunk += encoder.flush()
        self.bytes_out += len(chunk)
        await self.send({"type": "http.response.body", "body": chunk, "more_body": more})
        if not more and filler is not None:
            self.filler = None
            await filler.finish()

    async def answer_from_cache(self, entry: CachedResponse, outcome: bytes) -> None:
        """Answer with a stored response (`outcome` b"HIT" or b"STALE"), compressed for this client if the route
        compresses."""
        assert self.cache is not None
        status, headers, body = self.cache.answer(entry, outcome, self.method, self.request_headers)
        self.outcome = outcome
        self.cache.count(entry.route, outcome)
        # The gateway answered: it is on the answer's path (Via). The route's guard fields come from `send`.
        headers = answer_head(headers, self.request_id, self.extra_headers)
        compression = self.shaping.compression
        if compression is not None:
            encoder, headers = compression.start(self.method, status, headers, self.accept_encoding)
            if encoder is not None:
                body = encoder.compress(body) + encoder.flush()
        self.status = status
        self.started = True
        self.bytes_out = len(body)
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def serve_stale(self) -> bool:
        """For a gateway error (connection refused, timeout, no healthy backend) before any answer went out:
        answer with the stale copy if the lookup found one within its window. True when it did."""
        if self.started or self.lookup is None or self.lookup.stale is None or self.cache is None:
            return False
        await self.answer_from_cache(self.lookup.stale, b"STALE")
        return True
