"""The one small interface every AI routing strategy runs behind: what it sees, what it answers, its time budget,
and the record of recent decisions an operator reads (later: /metrics, the access log, the admin page).

A strategy is never trusted with the request's latency: `decide_within` runs it under its budget and, when it
overruns, raises or answers nonsense, bypasses it for the fallback and counts that. Nothing here awaits anything
but the strategy itself, so a custom decision module installed later gets the same guarantees as the built-in one.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

Source = Literal["model", "llm", "cache", "fallback"]
SOURCES: tuple[Source, ...] = ("model", "llm", "cache", "fallback")
RECENT_DECISIONS = 200
BUDGET_EXCEEDED = "budget exceeded"


@dataclass(frozen=True, slots=True)
class BackendView:
    """One of the route's backends as a strategy sees it: its position, where it is, what it is for."""

    index: int
    url: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """What a strategy sees of a request: the route's name and path template, the request's head and body (or the
    body's first bytes), and the backends to choose among."""

    route: str
    method: str
    path: str
    template: str  # the route's external_path, /users/{id}, not /users/42
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    backends: tuple[BackendView, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """A strategy's answer: the backend's index, or None for no opinion (the caller falls back), where the answer
    came from, why in a few words for the operator, and how long it took."""

    index: int | None
    source: Source
    reason: str
    elapsed_s: float


class Strategy(Protocol):
    """A routing decision module: `decide` must answer within `budget_s` seconds or be bypassed."""

    name: str
    budget_s: float

    async def decide(self, request: RoutingRequest) -> Decision: ...


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision in the operator's log; `at` is wall time."""

    at: float
    route: str
    strategy: str
    source: Source
    index: int | None
    reason: str
    elapsed_s: float


class DecisionLog:
    """The recent decisions (a bounded ring) and counters for /metrics, all plain ints and dicts.

    `counts`: {(route, strategy, source): decisions}; `fallbacks`: {(route, strategy, reason): decisions}, the
    reasons being short fixed phrases so that the key space stays small; `agreement`: {route: (agreed,
    compared)}, how often the local model's confident answer matched the LLM's when both answered.
    """

    __slots__ = ("recent", "counts", "fallbacks", "agreement", "clock")

    def __init__(self, size: int = RECENT_DECISIONS, *, clock: Callable[[], float] = time.time) -> None:
        self.recent: deque[DecisionRecord] = deque(maxlen=size)
        self.counts: dict[tuple[str, str, Source], int] = {}
        self.fallbacks: dict[tuple[str, str, str], int] = {}
        self.agreement: dict[str, tuple[int, int]] = {}
        self.clock = clock

    def record(self, route: str, strategy: str, decision: Decision) -> None:
        self.recent.append(DecisionRecord(self.clock(), route, strategy, decision.source, decision.index,
                                          decision.reason, decision.elapsed_s))
        key = (route, strategy, decision.source)
        self.counts[key] = self.counts.get(key, 0) + 1
        if decision.source == "fallback":
            reason_key = (route, strategy, decision.reason)
            self.fallbacks[reason_key] = self.fallbacks.get(reason_key, 0) + 1

    def compare(self, route: str, agreed: bool) -> None:
        """Count one request both the local model and the LLM answered, and whether they agreed."""
        hits, total = self.agreement.get(route, (0, 0))
        self.agreement[route] = (hits + agreed, total + 1)

    def agreement_rate(self, route: str) -> float | None:
        """The share of compared answers that agreed on `route`; None before any was compared."""
        hits, total = self.agreement.get(route, (0, 0))
        return hits / total if total else None

    def sources(self, route: str, strategy: str) -> dict[Source, int]:
        """{source: decisions} for one route and strategy, every source present."""
        return {source: self.counts.get((route, strategy, source), 0) for source in SOURCES}


async def decide_within(strategy: Strategy, request: RoutingRequest, fallback_index: int | None,
                        log: DecisionLog | None = None, *,
                        timer: Callable[[], float] = time.perf_counter) -> Decision:
    """The strategy's decision, or a "fallback" one with `fallback_index` (None: the route's normal balancing)
    when it has no opinion, overruns its budget, raises, or names no backend of the request. Never raises
    (bar the caller's own cancellation). `elapsed_s` is what the request waited; `log` records every decision.
    """
    started = timer()
    deadline = asyncio.timeout(strategy.budget_s)
    try:
        async with deadline:
            decision = await strategy.decide(request)
    except TimeoutError:
        # A TimeoutError of the strategy's own (not the budget's) is one more error.
        reason = BUDGET_EXCEEDED if deadline.expired() else "error: TimeoutError"
        decision = Decision(fallback_index, "fallback", reason, 0.0)
    except Exception as exc:  # a strategy may be a third party's module: its failure must not fail the request
        decision = Decision(fallback_index, "fallback", f"error: {type(exc).__name__}", 0.0)
    else:
        if decision.index is None:
            decision = replace(decision, index=fallback_index, source="fallback")
        elif not 0 <= decision.index < len(request.backends):
            decision = Decision(fallback_index, "fallback", "index out of range", 0.0)
    decision = replace(decision, elapsed_s=timer() - started)
    if log is not None:
        log.record(request.route, strategy.name, decision)
    return decision
