"""Request size limits: the request target (414), the header fields (431) and the body (413).

The body limit is checked twice: against Content-Length before anything is read (so a client waiting on
`Expect: 100-continue` never sends the body), and by counting what arrives, for chunked bodies and for clients
that send more than they announced.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from protocols.guards.config import BlockReader
from protocols.guards.refusals import HeaderFieldsTooLarge, PayloadTooLarge, UriTooLong

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]

KEYS = frozenset({"max_body_bytes", "max_header_bytes", "max_header_count", "max_url_length"})
# Defaults: nginx answers 414 past 8 KiB request lines and Apache at 8190 bytes; 100 fields is Apache's
# LimitRequestFields; 32 KiB of fields is nginx's 4 x 8 KiB. Bodies are not limited by default, as in Kong and
# Traefik: the proxy streams them in flat memory, so only the backend knows what is too large (nginx's own
# default is 1 MiB); set `max_body_bytes` where it matters. 0 switches a limit off.
DEFAULT_MAX_BODY_BYTES = 0
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_MAX_HEADER_COUNT = 100
DEFAULT_MAX_URL_LENGTH = 8192


class RequestLimits:
    """A compiled `limits` block; a limit of 0 is off."""

    __slots__ = ("max_body_bytes", "max_header_bytes", "max_header_count", "max_url_length")

    def __init__(self, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
                 max_url_length: int = DEFAULT_MAX_URL_LENGTH) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        self.max_url_length = max_url_length

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> RequestLimits:
        """The compiled block (the defaults when it is absent); raises BlockError."""
        reader = BlockReader(block, KEYS)
        limits = cls(
            max_body_bytes=reader.integer("max_body_bytes", DEFAULT_MAX_BODY_BYTES, 0, 1 << 40),
            max_header_bytes=reader.integer("max_header_bytes", DEFAULT_MAX_HEADER_BYTES, 0, 1 << 20),
            max_header_count=reader.integer("max_header_count", DEFAULT_MAX_HEADER_COUNT, 0, 10_000),
            max_url_length=reader.integer("max_url_length", DEFAULT_MAX_URL_LENGTH, 0, 1 << 20),
        )
        reader.finish()
        return limits

    def check_head(self, scope: Mapping[str, Any]) -> None:
        """Raises UriTooLong, HeaderFieldsTooLarge or PayloadTooLarge (by Content-Length) for the request head."""
        limit = self.max_url_length
        if limit:
            raw = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string") or b""
            if len(raw) + (len(query) + 1 if query else 0) > limit:
                raise UriTooLong(limit)
        headers = scope["headers"]
        count_limit = self.max_header_count
        if count_limit and len(headers) > count_limit:
            raise HeaderFieldsTooLarge(f"more than {count_limit} fields")
        byte_limit = self.max_header_bytes
        body_limit = self.max_body_bytes
        if not byte_limit and not body_limit:
            return
        size = 0
        for name, value in headers:
            # As on the wire: "name: value\r\n".
            size += len(name) + len(value) + 4
            if name == b"content-length" and body_limit:
                try:
                    declared = int(value)
                except ValueError:
                    continue  # the server's parser has already refused a malformed one
                if declared > body_limit:
                    raise PayloadTooLarge(body_limit)
        if byte_limit and size > byte_limit:
            raise HeaderFieldsTooLarge(f"more than {byte_limit} bytes")

    def limit_receive(self, receive: Receive) -> Receive:
        """`receive`, counting body bytes and raising PayloadTooLarge once they pass the limit (or as is)."""
        limit = self.max_body_bytes
        if not limit:
            return receive
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            body = message.get("body")
            if body:
                seen += len(body)
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        return counted


DEFAULT_LIMITS = RequestLimits()
