"""In-memory WebSocket counters per route, for the metrics exporter to read; nothing here does I/O.

"from client" is what the client sent towards the backend, "to client" what the backend sent back. Bytes are
message payload bytes (text counted as UTF-8), not frame or TCP bytes.
"""
from __future__ import annotations

from typing import Any

COUNTERS = (
    "open", "opened", "closed", "rejected", "messages_from_client", "messages_to_client", "bytes_from_client",
    "bytes_to_client",
)


class RouteCounters:
    """The counters of one route. `open` is a gauge; the rest only grow. `rejected` counts handshakes that did
    not become tunnels (no backend, backend refused or failed, refused by the handshake guards or
    `authorize_handshake`)."""

    __slots__ = ("route", *COUNTERS)

    def __init__(self, route: str) -> None:
        self.route = route
        self.open = 0
        self.opened = 0
        self.closed = 0
        self.rejected = 0
        self.messages_from_client = 0
        self.messages_to_client = 0
        self.bytes_from_client = 0
        self.bytes_to_client = 0

    def as_dict(self) -> dict[str, Any]:
        return {"route": self.route, **{name: getattr(self, name) for name in COUNTERS}}


class WebSocketMetrics:
    """Counters by route id. A route that is renamed keeps its counters under its new name; a deleted route's
    counters stay until `forget` (totals must not jump backwards while its last tunnels drain)."""

    def __init__(self) -> None:
        self.routes: dict[int, RouteCounters] = {}

    def route(self, route_id: int, name: str) -> RouteCounters:
        counters = self.routes.get(route_id)
        if counters is None:
            counters = self.routes[route_id] = RouteCounters(name)
        elif counters.route != name:
            counters.route = name
        return counters

    def snapshot(self) -> list[dict[str, Any]]:
        """Every route's counters as plain dicts (route id under "route_id")."""
        return [{"route_id": route_id, **counters.as_dict()} for route_id, counters in self.routes.items()]

    def forget(self, route_id: int) -> None:
        counters = self.routes.get(route_id)
        if counters is not None and not counters.open:
            del self.routes[route_id]
