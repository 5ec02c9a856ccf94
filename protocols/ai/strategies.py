"""The strategies behind `ai_policy.strategy`, each built from a compiled AiPolicy: the built-in three and the
decision modules installed as packages (entry point group `rusta.ai_strategies`).

An installed module's entry point names a factory called as `factory(options, context)` (options: the route's
`ai_policy.options`; context: a StrategyContext) that returns an object with `name`, `budget_s` and
`async decide(request) -> Decision` (protocols.ai.decide.Strategy), and optionally `observe(...)`. The factory may
also have `check_options(options) -> {key: message}`, which the control plane calls when the route is saved.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from random import Random
from typing import Any

from protocols.ai.anomaly import AnomalyDetector
from protocols.ai.config import AiPolicy, installed_strategies
from protocols.ai.content import ContentAnalysis
from protocols.ai.decide import Decision, RoutingRequest, Strategy
from protocols.ai.latency import LatencyPredictor, RequestFeatures
from protocols.ai.providers import LlmClient, ProviderSettings
from protocols.ai.records import DecisionLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrategyContext:
    """What an installed decision module is given besides its options: the route's name, its time budget, the
    process's LLM client with the route's providers (empty when none is configured), and the decision log."""

    route: str
    budget_s: float
    llm: LlmClient
    providers: tuple[ProviderSettings, ...]
    log: DecisionLog


class Unavailable:
    """A strategy that cannot run (no model configured, no API key, a module that failed to load): every request
    goes by the fallback, and the reason says why, in the decision log and the gateway's log."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.budget_s = 1.0
        self.reason = reason

    async def decide(self, request: RoutingRequest) -> Decision:
        return Decision(None, "fallback", self.reason, 0.0)


class LatencyPrediction:
    """`latency_prediction`: the lower predicted latency of two backends drawn among those usable now."""

    def __init__(self, budget_s: float, min_samples: float, horizon_s: float, clock: Any,
                 rng: Random | None = None) -> None:
        self.name = "latency_prediction"
        self.budget_s = budget_s
        self.predictor: LatencyPredictor[str] = LatencyPredictor(clock, min_samples=min_samples,
                                                                 horizon_s=horizon_s)
        self.rng = rng if rng is not None else Random()

    async def decide(self, request: RoutingRequest) -> Decision:
        features = _features(request)
        usable = request.usable
        views = request.backends if usable is None else [view for view in request.backends if view.index in usable]
        if not views:
            return Decision(None, "fallback", "no usable backend", 0.0)
        urls = [view.url for view in views]
        chosen = self.predictor.choose(urls, features, self.rng)
        predicted = self.predictor.predict(chosen, features)
        reason = "exploring" if predicted is None else f"predicted {predicted * 1000:.1f} ms"
        return Decision(views[urls.index(chosen)].index, "model", reason, 0.0)

    def observe(self, request: RoutingRequest, index: int | None, status: int, upstream_s: float | None) -> None:
        if index is not None and upstream_s is not None:
            self.predictor.observe(request.backends[index].url, _features(request), upstream_s)


def _features(request: RoutingRequest) -> RequestFeatures:
    return RequestFeatures(request.method, request.template, request.body_bytes)


class AnomalyDetection:
    """`anomaly_detection`: each request scored against its client's and the route's normal; an anomalous one is
    recorded (shadow), sent to the anomaly lane, or refused (enforce without a lane)."""

    def __init__(self, budget_s: float, mode: str, lane: int | None, threshold: float, window_s: float,
                 clock: Any, log: DecisionLog) -> None:
        self.name = "anomaly_detection"
        self.budget_s = budget_s
        self.mode = mode
        self.lane = lane
        self.log = log
        self.detector = AnomalyDetector(window_s=window_s, threshold=threshold, clock=clock)

    async def decide(self, request: RoutingRequest) -> Decision:
        client = request.client
        verdict = self.detector.score(client, request.path, request.body_bytes)
        if not verdict.anomalous:
            return Decision(None, "model", "normal", 0.0)
        reasons = "; ".join(verdict.reasons)
        if self.mode == "shadow":
            action, decision = "shadow", Decision(None, "model", "anomalous (shadow)", 0.0)
        elif self.lane is not None:
            action, decision = "routed", Decision(self.lane, "model", "anomalous: anomaly lane", 0.0)
        else:
            action, decision = "refused", Decision(None, "model", "anomalous: refused", 0.0,
                                                   refusal=f"Unusual traffic from this client: {reasons}.")
        self.log.verdict(request.route, client, verdict.score, verdict.reasons, action)
        return decision

    def observe(self, request: RoutingRequest, index: int | None, status: int, upstream_s: float | None) -> None:
        self.detector.outcome(request.client, status)


def build_strategy(route: str, policy: AiPolicy, llm: LlmClient, record: DecisionLog, clock: Any,
                   environ: Mapping[str, str] = os.environ) -> Strategy:
    """The strategy a route's policy names, ready to decide; Unavailable (saying why) when it cannot run."""
    options = policy.options
    name = policy.strategy
    if name == "latency_prediction":
        return LatencyPrediction(policy.budget_s, options["min_samples"], options["horizon_s"], clock)
    if name == "anomaly_detection":
        return AnomalyDetection(policy.budget_s, options["mode"], options["anomaly_backend_index"],
                                float(options["threshold"]), float(options["window_s"]), clock, record)
    providers: list[ProviderSettings] = []
    problems: list[str] = []
    for choice in policy.providers:
        try:
            providers.append(choice.settings(environ))
        except ValueError as exc:
            problems.append(str(exc))
    if name == "content_analysis":
        if not providers:
            reason = problems[0] if problems else "no LLM configured: set ai_policy.provider or the ai block"
            log.warning("route %r: content_analysis goes by its fallback: %s", route, reason)
            return Unavailable(name, "llm not configured")
        return ContentAnalysis(
            llm, providers[0], fallbacks=providers[1:], budget_s=policy.budget_s,
            cache_ttl_s=float(options["cache_ttl_s"]), log=record, confidence=float(options["confidence"]),
            learn=options["learn"], sample_rate=float(options["sample_rate"]))
    context = StrategyContext(route, policy.budget_s, llm, tuple(providers), record)
    try:
        factory = installed_strategies()[name].load()
        strategy: Strategy = factory(dict(options.get("options") or {}), context)
    except Exception as exc:  # a third party's module: its failure to start leaves the route on its fallback
        log.error("route %r: the decision module %r cannot start, requests go by the fallback: %s: %s", route, name,
                  type(exc).__name__, exc)
        return Unavailable(name, "module failed to start")
    return strategy
