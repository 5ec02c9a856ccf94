"""What the proxy puts around a route's answers from its guards, the error of a route whose blocks do not
compile (both compiled with the table's plan, protocols.plan): such a route is refused with 503
`route_misconfigured` rather than served unguarded or untransformed; and the backends as the plugins' `balance`
phase sees them.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from protocols.balancing import RouteRuntime
from protocols.errors import GatewayError
from protocols.guards import Guards, origin_of
from protocols.plugins import Backend

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


class RouteMisconfigured(GatewayError):
    """503: the route's guard or shaping blocks do not compile; the log names the problem."""

    def __init__(self, route_name: str) -> None:
        super().__init__(503, "route_misconfigured",
                         f"Route '{route_name}' has settings the gateway cannot apply; the gateway log says why.")


class GuardedSend:
    """The ASGI `send` of a request whose answers get the route's CORS and security fields: every response head,
    the backend's, the cache's and the gateway's own error answers, goes through `Guards.response_headers`.

    Built complete, once the route is known, and kept on the Exchange: protocols.http.headers.answer_head adds its
    fields to the heads the proxy builds (forwarded answers, its own errors), and a shaped answer (transformed,
    cached or compressed) is sent through it, so that they come after the shaping."""

    __slots__ = ("send", "guards", "origin", "https")

    def __init__(self, send: Send, guards: Guards, origin: bytes, https: bool) -> None:
        self.send = send
        self.guards = guards
        self.origin = origin
        self.https = https

    @classmethod
    def for_request(cls, send: Send, guards: Guards, request_headers: Any, https: bool) -> GuardedSend:
        """The fields for this request's answers (its Origin is read only when the guards have a CORS policy)."""
        return cls(send, guards, origin_of(request_headers) if guards.cors else b"", https)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            # Our own messages: the head's list is ours to change in place.
            message["headers"] = self.guards.response_headers(list(message.get("headers", ())), self.origin,
                                                              self.https)
        await self.send(message)


def backend_views(runtime: RouteRuntime, health: Mapping[int, bool]) -> tuple[Backend, ...]:
    """The route's backends as the plugins' `balance` phase sees them, each saying whether it may take the
    request now (health checks, circuit breaker)."""
    usable = runtime.usable_positions(health)
    return tuple(Backend(index, state.spec.url, state.spec.description, usable is None or index in usable)
                 for index, state in enumerate(runtime.states))
