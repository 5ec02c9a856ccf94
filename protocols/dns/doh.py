"""DNS over HTTPS (RFC 8484 wire format) and the earlier gateway's JSON wrapper, as one ASGI-level handler.

Paths: `GET /dns-query?dns=<base64url>` and `POST /dns-query` (application/dns-message) answer
application/dns-message with `Cache-Control: max-age=<smallest TTL>`; `POST /dns/query` with
{"query": "<hex>"} (or {"data": ...}) answers {"response": "<hex>", "cached": bool}; `GET /dns/cache/stats`
and `POST /dns/cache/cleanup` report on and trim the cache. Errors are Rusta's JSON errors.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from protocols.dns import wire
from protocols.dns.forwarder import DnsForwarder, Reply
from protocols.errors import ClientDisconnected, GatewayError, MethodNotAllowed, NoRoute

# What the DNS-over-HTTPS helpers answer: the HTTP status, its header pairs and the body.
HttpAnswer: TypeAlias = tuple[int, list[tuple[bytes, bytes]], bytes]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DOH_PATHS = frozenset({"/dns-query", "/dns/query", "/dns/cache/stats", "/dns/cache/cleanup"})
_ALLOWED = {"/dns-query": ("GET", "POST"), "/dns/query": ("POST",), "/dns/cache/stats": ("GET",),
            "/dns/cache/cleanup": ("POST",)}
DNS_MESSAGE = b"application/dns-message"
_MAX_REQUEST_ID = 200
_VISIBLE_ASCII = bytes(range(0x21, 0x7F))
_ID_PREFIX = os.urandom(8).hex().encode()
_id_counter = itertools.count(1)
_MAX_JSON_BODY = 2 * wire.MAX_MESSAGE + 1024  # hex doubles the message; room for the JSON around it


# The errors of these endpoints, in Rusta's JSON error shape (protocols/errors.py).
class InvalidDnsRequest(GatewayError):
    """400: the request carries no DNS query we can read (bad base64url, bad hex, bad JSON, malformed message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, "invalid_dns_request", f"Invalid DNS request: {reason}.")


class DnsMessageTooLarge(GatewayError):
    """413: the body is larger than the largest DNS message (65,535 bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"The request body exceeds {limit} bytes.")


class UnsupportedDnsMediaType(GatewayError):
    """415: a DNS-over-HTTPS POST whose Content-Type is not application/dns-message (RFC 8484 section 4.1)."""

    def __init__(self, content_type: str) -> None:
        super().__init__(
            415, "unsupported_media_type",
            f"Content-Type '{content_type}' is not supported here; send application/dns-message.",
        )


def is_doh_path(path: str) -> bool:
    """True for the paths doh_app serves: the proxy listener hands these to it before route matching."""
    return path in DOH_PATHS


def _request_id(scope: Scope) -> bytes:
    """The client's X-Request-ID when it is 1-200 visible ASCII characters, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if value and len(value) <= _MAX_REQUEST_ID and not value.translate(None, _VISIBLE_ASCII):
                return bytes(value)
            break
    return b"%s-%08x" % (_ID_PREFIX, next(_id_counter))


def _header(scope: Scope, wanted: bytes) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return bytes(value)
    return b""


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused past `limit` bytes; the loop ends after `limit` + 1 messages at most."""
    chunks: list[bytes] = []
    size = 0
    for _ in range(limit + 2):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise DnsMessageTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
    raise DnsMessageTooLarge(limit)


def _decode_base64url(text: str) -> bytes:
    """RFC 8484 section 4.1: base64url without padding (padding tolerated)."""
    if not text or "+" in text or "/" in text:
        raise InvalidDnsRequest("the dns parameter must be base64url")
    stripped = text.rstrip("=")
    try:
        return base64.b64decode(stripped.translate(str.maketrans("-_", "+/")) + "=" * (-len(stripped) % 4),
                                validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDnsRequest("the dns parameter is not valid base64url") from None


async def _resolve(forwarder: DnsForwarder, data: bytes) -> Reply:
    if len(data) > wire.MAX_MESSAGE:
        raise DnsMessageTooLarge(wire.MAX_MESSAGE)
    try:
        query = wire.parse_query(data)
    except wire.Unparseable as exc:
        raise InvalidDnsRequest(f"not a well-formed DNS query ({exc})") from None
    return await forwarder.answer(query, data)


async def _dns_query(scope: Scope, receive: Receive, forwarder: DnsForwarder) -> HttpAnswer:
    if scope["method"] == "GET":
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "dns" not in params:
            raise InvalidDnsRequest("the dns query parameter is missing")
        data = _decode_base64url(params["dns"])
    else:
        content_type = _header(scope, b"content-type").split(b";")[0].strip().lower()
        if content_type != DNS_MESSAGE:
            raise UnsupportedDnsMediaType(content_type.decode("latin-1"))
        data = await _read_body(receive, wire.MAX_MESSAGE)
    reply = await _resolve(forwarder, data)
    headers = [
        (b"content-type", DNS_MESSAGE),
        (b"content-length", str(len(reply.wire)).encode()),
        (b"cache-control", b"max-age=%d" % reply.ttl),
    ]
    return 200, headers, reply.wire


async def _json_query(receive: Receive, forwarder: DnsForwarder) -> HttpAnswer:
    body = await _read_body(receive, _MAX_JSON_BODY)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidDnsRequest("the body is not JSON") from None
    hex_data = document.get("query", document.get("data")) if isinstance(document, dict) else None
    if not isinstance(hex_data, str):
        raise InvalidDnsRequest('send {"query": "<hex wire data>"}')
    try:
        data = bytes.fromhex(hex_data)
    except ValueError:
        raise InvalidDnsRequest("the query is not hexadecimal") from None
    reply = await _resolve(forwarder, data)
    return _json(200, {"response": reply.wire.hex(), "cached": reply.cached})


def _json(status: int, document: dict[str, Any]) -> HttpAnswer:
    payload = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"cache-control", b"no-store")]
    return status, headers, payload


async def doh_app(scope: Scope, receive: Receive, send: Send, forwarder: DnsForwarder) -> None:
    """ASGI handler for DOH_PATHS (http scopes only); mount it with `make_doh_app(forwarder)` or call it.

    Relies on ASGI's guarantee that header names arrive lower-cased; it answers once, with a Content-Length.
    """
    if scope["type"] != "http":
        return
    request_id = _request_id(scope)
    path, method = scope["path"], scope["method"]
    try:
        allowed = _ALLOWED.get(path)
        if allowed is None:
            raise NoRoute(method, path)
        if method not in allowed:
            raise MethodNotAllowed(method, path, ", ".join(allowed))
        if path == "/dns-query":
            status, headers, body = await _dns_query(scope, receive, forwarder)
        elif path == "/dns/query":
            status, headers, body = await _json_query(receive, forwarder)
        elif path == "/dns/cache/stats":
            status, headers, body = _json(200, forwarder.cache.stats())
        else:
            removed = forwarder.cache.cleanup()
            status, headers, body = _json(200, {"removed": removed, "entries": len(forwarder.cache)})
    except ClientDisconnected:
        return
    except GatewayError as exc:
        status, headers, body = exc.response(request_id.decode("latin-1"))
    headers.append((b"x-request-id", request_id))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_doh_app(forwarder: DnsForwarder) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI 3 application serving doh_app with this forwarder (for uvicorn, or a router's mount)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await doh_app(scope, receive, send, forwarder)

    return app
