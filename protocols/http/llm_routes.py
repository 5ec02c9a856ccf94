"""The proxy's side of LLM routes: a request under an `llm` route's path goes through the route's guards and its
`auth` (which decides the consumer), then to the LLM front doors (protocols.llm.gateway).

A refusal of the route's guards or credentials is answered in the front door's own error format, so an OpenAI or
Anthropic SDK raises its usual error; the exchange's outcome fills the proxy's record of the request (status, the
target that answered as its backend, the consumer) like any other.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from protocols.errors import GatewayError
from protocols.http.plugins import GuardedSend, RouteMisconfigured
from protocols.llm.gateway import LlmGateway, refuse

if TYPE_CHECKING:
    from protocols.http.forwarding import Exchange
    from protocols.plan import TablePlan

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def serve_llm(gateway: LlmGateway, plan: TablePlan, scope: dict[str, Any], receive: Receive, send: Send,
                    exchange: Exchange) -> bool:
    """Serve the request when an llm route covers its path (by prefix) and no more exact route of another
    protocol matches it; False when it is not for an llm route."""
    found = plan.llm_route(scope["method"], exchange.host, exchange.clean_path)
    if found is None:
        return False
    route = found.route
    exchange.route = route.name
    route_plan = plan.routes[route.id]
    guards, policy = route_plan.guards, route_plan.llm
    if route_plan.broken or guards is None or policy is None:
        raise RouteMisconfigured(route.name)
    exchange.guard = guard = GuardedSend.for_request(send, guards, scope["headers"], exchange.https)
    door = gateway.door(found.subpath) or "openai"
    try:
        guards.check_request(scope, exchange.client_ip)
        access = route_plan.access
        if access is not None:
            principal, exchange.consumer = await access.identify(scope["headers"])
            await access.spend(scope["headers"], exchange.client_ip, principal, exchange.consumer)
    except GatewayError as exc:  # in the client's format: its SDK raises AuthenticationError, RateLimitError...
        outcome = await refuse(guard, door, exc.status, exc.message, exc.type, headers=exc.headers)
        exchange.status, exchange.error, exchange.answered = outcome.status, exc.type, True
        return True
    outcome = await gateway.serve(route.id, route.name, policy, found.subpath, scope["method"],
                                  guards.limit_receive(receive), guard, consumer=exchange.consumer,
                                  headers=scope["headers"], query=scope.get("query_string") or b"",
                                  resilience=route_plan.llm_resilience)
    exchange.status, exchange.answered = outcome.status, True
    exchange.backend = outcome.target
    exchange.error = outcome.error if outcome.status >= 400 or outcome.error == "stream_cut" else None
    exchange.upstream_s = outcome.first_token_s
    return True
