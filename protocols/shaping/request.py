"""The request side of shaping that needs the ASGI `receive`: reading a JSON body (within the cap) to edit it."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from protocols.errors import ClientDisconnected
from protocols.transform import RequestTransform

Receive = Callable[[], Awaitable[dict[str, Any]]]


async def read_capped(receive: Receive, first: bytes, more: bool, limit: int) -> tuple[bytes, bool]:
    """Read the request body after its `first` message until it ends or passes `limit` bytes.

    Returns (what was read, complete). When not complete, the rest is still in `receive` and must be streamed
    after what was read.
    """
    parts = [first]
    size = len(first)
    while more and size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away during the upload")
        chunk = message.get("body", b"")
        parts.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    return b"".join(parts), not more


def edit_body(transform: RequestTransform, data: bytes, complete: bool) -> bytes:
    """The body to send upstream: edited when it was read whole and within the cap, else as it came."""
    if not complete or len(data) > transform.max_body_bytes:
        return data
    return transform.apply_json(data)
