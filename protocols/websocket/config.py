"""A route's `websocket` policy block (`RouteSpec.policies["websocket"]`), parsed with defaults.

    max_message_bytes   1048576   a message larger than this, either way, closes the tunnel with 1009
    idle_timeout_s      300       no text or binary message either way for this long closes it with 1001
                                  (pings do not count: the gateway answers and sends those itself); 0: never

The control plane will validate the block; until then, and always as a second line, a value of the wrong type
or out of range falls back to its default, so a bad row cannot break the listener.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
DEFAULT_IDLE_TIMEOUT = 300.0
# uvicorn's own ceiling on a client message (its ws_max_size, 16 MiB by default) applies before ours.
MAX_MESSAGE_BYTES_LIMIT = 1 << 30
MAX_IDLE_TIMEOUT_S = 7 * 24 * 3600  # a week


@dataclass(frozen=True, slots=True)
class WebSocketPolicy:
    """Limits of one route's tunnels. `idle_timeout` is in seconds; 0 disables it."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT


DEFAULT_POLICY = WebSocketPolicy()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def websocket_policy(route_name: str, policies: Mapping[str, Any] | None) -> WebSocketPolicy:
    """The route's WebSocket limits; invalid values are logged and replaced by their defaults."""
    block = (policies or {}).get("websocket")
    if not block:
        return DEFAULT_POLICY
    if not isinstance(block, Mapping):
        log.warning("route %r: the websocket policy is not an object; using the defaults", route_name)
        return DEFAULT_POLICY
    max_bytes = DEFAULT_MAX_MESSAGE_BYTES
    raw = block.get("max_message_bytes")
    if raw is not None:
        number = _number(raw)
        if number is not None and number == int(number) and 1 <= number <= MAX_MESSAGE_BYTES_LIMIT:
            max_bytes = int(number)
        else:
            log.warning("route %r: websocket.max_message_bytes=%r is invalid; using %d", route_name, raw, max_bytes)
    idle = DEFAULT_IDLE_TIMEOUT
    raw = block.get("idle_timeout_s")
    if raw is not None:
        number = _number(raw)
        if number is not None and 0 <= number <= MAX_IDLE_TIMEOUT_S:
            idle = number
        else:
            log.warning("route %r: websocket.idle_timeout_s=%r is invalid; using %g", route_name, raw, idle)
    return WebSocketPolicy(max_bytes, idle)
