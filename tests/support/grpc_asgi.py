"""Calls into ProxyApp as an HTTP/2 listener would make them: an HTTP/2 scope with the trailers extension, the
request messages through receive() as the test hands them over, everything the app sends kept in order."""
from __future__ import annotations

import asyncio
from typing import Any

from tests.support.grpc_backend import frame, unframe

App = Any


def grpc_scope(path: str, headers: list[tuple[bytes, bytes]] | None = None, *, http_version: str = "2",
               content_type: bytes = b"application/grpc", client: str = "127.0.0.1") -> dict[str, Any]:
    fields = [(b"host", b"gateway.test"), (b"te", b"trailers")]
    if content_type:
        fields.append((b"content-type", content_type))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": http_version, "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": fields + (headers or []), "client": (client, 50000), "server": ("127.0.0.1", 8080),
        "extensions": {"http.response.trailers": {}} if http_version == "2" else {}, "state": {},
    }


class AsgiCall:
    """One call: `await call.put(b"msg")` sends a request message, `await call.close()` ends the request, `await
    call.message()` waits for the next response message; `run` is the app's task, `sent` what it sent."""

    def __init__(self, app: App, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.sent: list[dict[str, Any]] = []
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._read = 0  # response body bytes handed out by message()
        self.run = asyncio.get_running_loop().create_task(app(scope, self._receive, self._send))

    async def put(self, message: bytes, last: bool = False) -> None:
        await self._incoming.put({"type": "http.request", "body": frame(message), "more_body": not last})

    async def close(self) -> None:
        await self._incoming.put({"type": "http.request", "body": b"", "more_body": False})

    async def disconnect(self) -> None:
        await self._incoming.put({"type": "http.disconnect"})

    async def message(self) -> bytes:
        """The next whole response message (waits for it)."""
        while True:
            body = self.body[self._read:]
            if len(body) >= 5 and len(body) >= 5 + int.from_bytes(body[1:5], "big"):
                size = int.from_bytes(body[1:5], "big")
                self._read += 5 + size
                return body[5:5 + size]
            if self.run.done():
                raise AssertionError(f"the call ended without another message: {self.sent}")
            self._changed.clear()
            await asyncio.wait([asyncio.ensure_future(self._changed.wait()), self.run],
                               return_when=asyncio.FIRST_COMPLETED)

    async def finished(self) -> AsgiCall:
        await asyncio.wait_for(self.run, 10)
        return self

    @property
    def start(self) -> dict[str, Any]:
        return next(m for m in self.sent if m["type"] == "http.response.start")

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.start["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    @property
    def messages(self) -> list[bytes]:
        return unframe(self.body)

    @property
    def trailers(self) -> dict[bytes, bytes]:
        for message in self.sent:
            if message["type"] == "http.response.trailers":
                return dict(message["headers"])
        raise AssertionError(f"no trailers were sent: {self.sent}")

    @property
    def status(self) -> int:
        return int(self.trailers[b"grpc-status"])

    async def _receive(self) -> dict[str, Any]:
        return await self._incoming.get()

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self._changed.set()


async def unary(app: App, path: str, message: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                **scope: Any) -> AsgiCall:
    """A whole unary call (also what any call with one request message is)."""
    call = AsgiCall(app, grpc_scope(path, headers, **scope))
    await call.put(message, last=True)
    return await call.finished()
