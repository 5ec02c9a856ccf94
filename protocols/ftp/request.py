"""One request to the FTP gateway as the operations see it, and what it did (the outcome)."""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from protocols.ftp.paths import PathRejected, confine
from protocols.ftp.replies import FtpBadRequest

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(slots=True)
class FtpOutcome:
    """What the exchange did, for the access log and metrics. `started`: the response head went out."""

    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    backend: str = ""
    error: str = ""
    started: bool = False


@dataclass(slots=True)
class FtpRequest:
    """One request to the gateway, with its parameters checked and its paths mapped under the root."""

    method: str
    query: dict[str, str]
    tail: str
    root: str
    scope: dict[str, Any]
    receive: Receive
    send: Send
    request_id: bytes
    outcome: FtpOutcome
    legacy_max_bytes: int
    label: str = ""
    paths: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (server path, client path)
    legacy: bool = False
    offered: tuple[str, str] | None = None  # credentials in the earlier gateway's query or JSON body
    payload: bytes = b""  # a legacy upload's decoded content

    def take_path(self, key: str, *, default: str | None = None, use_tail: bool = True) -> None:
        value = self.query.get(key)
        if value is None and use_tail and self.tail not in ("", "/"):
            value = self.tail
        if value is None:
            value = default
        if value is None:
            raise FtpBadRequest(f"Give the {key} with ?{key}=.")
        try:
            self.paths[key] = confine(self.root, value, key)
        except PathRejected as exc:
            raise FtpBadRequest(str(exc)) from None

    def server(self, key: str = "path") -> str:
        return self.paths[key][0]

    def visible(self, key: str = "path") -> str:
        return self.paths[key][1]

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.outcome.status = status
        self.outcome.started = True
        await self.send({"type": "http.response.start", "status": status,
                         "headers": [*headers, (b"x-request-id", self.request_id)]})

    async def json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        await self.start(status, [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                                  (b"content-length", b"%d" % len(body))])
        await self.send({"type": "http.response.body", "body": b"" if self.method == "HEAD" else body})
