"""AI routing as its route's built-in plugin (protocols.plugins): `balance` asks the route's strategy for a backend,
`response` adds the decision header, `log` tells the strategy how the request went.

It runs in the route's plugin chain like an installed plugin, counted by the same per-plugin metrics
(`rusta_plugin_*{plugin="ai_routing"}`), with two differences an installed plugin cannot have: it is not listed in
`plugins` (the route's `ai_policy` block puts it in the chain, ahead of the others), and its time budget is the
policy's `decision_timeout_ms` plus a second, since protocols.ai.decide.decide_within already answers within the
decision budget with its own fallback.
"""
from __future__ import annotations

from typing import Any

from protocols.ai.routing import RouteAi
from protocols.plugins import BUILTIN_AI, Choose, LoadedPlugin, Modify, PluginEntry
from protocols.plugins.interface import BalanceView, ResponseView

# The margin past the decision budget after which the chain itself cuts a decision off (it never should).
CHAIN_MARGIN_MS = 1000
_HEADER = "X-Rusta-AI-Decision"


class AiRoutingPlugin:
    """One AI route's strategy seen as a plugin. What the strategy saw and answered travels in the request's
    `ctx` from `balance` to `response` and `log`. `response` and `log` exist only when the route asks for the
    decision header and the strategy observes outcomes, so a route without them pays for neither."""

    __slots__ = ("route_ai", "label", "response", "log")

    def __init__(self, route_ai: RouteAi) -> None:
        self.route_ai = route_ai
        self.label = route_ai.strategy.name  # the access log's ai_strategy
        self.response = self._header if route_ai.header else None
        self.log = self._finished if route_ai.observes else None

    async def balance(self, view: BalanceView) -> Choose:
        request = view.request
        backends = view.backends
        usable = None if all(backend.usable for backend in backends) else frozenset(
            backend.index for backend in backends if backend.usable)
        headers = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in request.headers)
        step = await self.route_ai.decide(request.method, request.path, headers, view.body, view.body_size,
                                          request.client, usable)
        request.ctx[BUILTIN_AI] = step
        return Choose(step[1].index, step[1].source)

    def _header(self, view: ResponseView) -> Modify | None:
        step = view.request.ctx.get(BUILTIN_AI)
        if step is None:  # answered before a decision (refused, or the body never came)
            return None
        return Modify(set=((_HEADER, self.route_ai.header_value(step[1]).decode("latin-1")),))

    def _finished(self, view: ResponseView) -> None:
        step = view.request.ctx.get(BUILTIN_AI)
        if step is not None:
            self.route_ai.finished(step[0], view.backend, view.status, view.upstream_s)


def ai_plugin(route_ai: RouteAi) -> LoadedPlugin:
    """The chain entry of a route's AI routing: first among the route's plugins, never failing the request."""
    budget_ms = round(route_ai.policy.budget_s * 1000) + CHAIN_MARGIN_MS
    entry = PluginEntry(BUILTIN_AI, {}, order=-1001, timeout_ms=budget_ms, on_error="continue")
    plugin: Any = AiRoutingPlugin(route_ai)
    return LoadedPlugin(entry, plugin)
