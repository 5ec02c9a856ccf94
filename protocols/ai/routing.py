"""AI routing on the request path: one `AiRouting` per data plane (the LLM client, the decision log, and each
route's strategy, kept across table swaps), and one `RouteAi` per AI route of a table, which the proxy asks for
a backend before the first attempt and tells the outcome after the answer.

A strategy survives a table swap while its route keeps the same id, the same compiled policy and the same
backends, so what it learned (the local model, the decision cache, latency estimates, client baselines) is not
lost to an unrelated edit. A request never waits longer than the policy's `decision_timeout_ms`
(protocols.ai.decide.decide_within); a chosen backend that is unhealthy or behind an open breaker is passed over by
the route's balancing (RouteRuntime.pick).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from protocols.ai.config import AiPolicy, ai_policy
from protocols.ai.decide import BackendView, Decision, RoutingRequest, Strategy, decide_within
from protocols.ai.providers import LlmClient
from protocols.ai.records import DecisionLog, register
from protocols.ai.strategies import build_strategy
from protocols.balancing import RouteRuntime
from protocols.errors import GatewayError
from protocols.table import CompiledRoute, RouteTable
from protocols.upstream import UpstreamClient

log = logging.getLogger(__name__)

DECISION_HEADER = b"x-rusta-ai-decision"


class AnomalousRequest(GatewayError):
    """429: anomaly detection in enforcing mode refused the request; the message gives the reasons."""

    def __init__(self, route: str, reason: str) -> None:
        super().__init__(429, "anomalous_request", f"Route '{route}' refused the request. {reason}",
                         [(b"retry-after", b"10")])


class RouteAi:
    """One AI route of one table: its strategy and what the strategy is shown of the route. It runs as the
    route's built-in plugin (protocols.ai.plugin), in the plugin chain's `balance`, `response` and `log` phases."""

    __slots__ = ("name", "template", "policy", "strategy", "views", "runtime", "log", "header", "_observe")

    def __init__(self, route: CompiledRoute, policy: AiPolicy, strategy: Strategy, runtime: RouteRuntime,
                 log: DecisionLog) -> None:
        self.name = route.name
        self.template = route.spec.external_path
        self.policy = policy
        self.strategy = strategy
        self.views = tuple(BackendView(index, backend.url, backend.description)
                           for index, backend in enumerate(route.backends))
        self.runtime = runtime
        self.log = log
        self.header = policy.decision_header
        self._observe = getattr(strategy, "observe", None)

    async def decide(self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]], body: bytes,
                     body_bytes: int, client: str,
                     usable: frozenset[int] | None) -> tuple[RoutingRequest, Decision]:
        """The strategy's decision for this request (within the policy's budget), recorded; AnomalousRequest when
        the strategy refuses it. `usable`: the positions of the backends that may take it now, None for all."""
        request = RoutingRequest(self.name, method, path, self.template, headers, body, self.views, client,
                                 body_bytes, usable)
        decision = await decide_within(self.strategy, request, self.policy.fallback_index, self.log)
        if decision.refusal:
            raise AnomalousRequest(self.name, decision.refusal)
        return request, decision

    def header_value(self, decision: Decision) -> bytes:
        """X-Rusta-AI-Decision's value: strategy, source and the chosen backend's position (or "balanced")."""
        chosen = "balanced" if decision.index is None else str(decision.index)
        return f"strategy={self.strategy.name}; source={decision.source}; backend={chosen}".encode()

    @property
    def observes(self) -> bool:
        """Whether the strategy wants to be told how each request went."""
        return self._observe is not None

    def finished(self, request: RoutingRequest, index: int | None, status: int, upstream_s: float | None) -> None:
        """Tell the strategy how the request went (the position of the backend that answered last, the client's
        status)."""
        observe = self._observe
        if observe is None:
            return
        try:
            observe(request, index, status, upstream_s)
        except Exception:  # an installed module's bug must not fail the request that already has its answer
            log.exception("route %r: the %s strategy's observe failed", self.name, self.strategy.name)


class AiRouting:
    """The data plane's AI routing: the LLM client (over the data plane's pooled upstream client), the decision
    log, and the strategy of every AI route, kept while its policy and backends stay the same."""

    def __init__(self, upstream: UpstreamClient, clock: Any = time.monotonic,
                 environ: Mapping[str, str] = os.environ) -> None:
        self.llm = LlmClient(upstream)
        self.log = DecisionLog()
        self.clock = clock
        self.environ = environ
        self._strategies: dict[int, tuple[AiPolicy, tuple[Any, ...], Strategy]] = {}
        register(self.log, self.llm)

    def start_table(self, table: RouteTable) -> None:
        """Forget the strategies of routes the new table no longer has."""
        ids = set(table.by_id)
        for route_id in [route_id for route_id in self._strategies if route_id not in ids]:
            del self._strategies[route_id]

    def route(self, route: CompiledRoute, settings: Mapping[str, Any], runtime: RouteRuntime) -> RouteAi | None:
        """The route's AI step, None when it has no enabled policy; BlockError when its block does not compile."""
        policy = ai_policy((route.spec.policies or {}).get("ai_policy"), settings.get("ai"), len(route.backends))
        if policy is None:
            self._strategies.pop(route.id, None)
            return None
        backends = tuple((backend.url, backend.description) for backend in route.backends)
        kept = self._strategies.get(route.id)
        if kept is not None and kept[0] == policy and kept[1] == backends:
            strategy = kept[2]
        else:
            strategy = build_strategy(route.name, policy, self.llm, self.log, self.clock, self.environ)
            self._strategies[route.id] = (policy, backends, strategy)
        return RouteAi(route, policy, strategy, runtime, self.log)

    async def aclose(self) -> None:
        """Stop the strategies' background work (LLM labels in flight)."""
        for _, _, strategy in self._strategies.values():
            close = getattr(strategy, "aclose", None)
            if close is not None:
                await close()
