"""The one small interface every AI routing strategy runs behind: what it sees, what it answers, its time budget,
and `decide_within`, which runs one under its budget (protocols.ai.records keeps what it decided).

A strategy is never trusted with the request's latency: `decide_within` runs it under its budget and, when it
overruns, raises or answers nonsense, bypasses it for the fallback and counts that. Nothing here awaits anything
but the strategy itself, so a custom decision module installed later gets the same guarantees as the built-in one.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from protocols.ai.records import DecisionLog

Source = Literal["model", "llm", "cache", "fallback"]
SOURCES: tuple[Source, ...] = ("model", "llm", "cache", "fallback")
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
    body: bytes  # the body's first bytes: all of it when it is small, its first chunk otherwise
    backends: tuple[BackendView, ...]
    client: str = ""  # the client's address (behind trusted proxies, the one they name)
    body_bytes: int = 0  # the body's declared length (Content-Length), else what was read of it
    usable: frozenset[int] | None = None  # the backends that could take the request now; None: all of them


@dataclass(frozen=True, slots=True)
class Decision:
    """A strategy's answer: the backend's index, or None for no preference (the route's fallback, else its
    balancing), where the answer came from, why in a few words for the operator, and how long it took.
    `refusal`, when set, refuses the request instead (429, the text as the reason the client reads)."""

    index: int | None
    source: Source
    reason: str
    elapsed_s: float
    refusal: str = ""


class Strategy(Protocol):
    """A routing decision module: `decide` must answer within `budget_s` seconds or be bypassed.

    A module may also define `observe(request, index, status, upstream_s)`, called once the request was answered:
    the backend that served it (None when none did), the status the client got, and the seconds until the
    backend's response head (None when no backend answered). It must not block and must not raise.
    """

    name: str
    budget_s: float

    async def decide(self, request: RoutingRequest) -> Decision: ...


async def decide_within(strategy: Strategy, request: RoutingRequest, fallback_index: int | None,
                        log: DecisionLog | None = None, *,
                        timer: Callable[[], float] = time.perf_counter) -> Decision:
    """The strategy's decision, or a "fallback" one with `fallback_index` (None: the route's normal balancing)
    when it overruns its budget, raises, or names no backend of the request; a decision without a preference
    (index None) takes `fallback_index` too, keeping its source and reason. Never raises
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
        if not isinstance(decision, Decision):
            decision = Decision(fallback_index, "fallback", "error: not a Decision", 0.0)
        elif decision.index is None:
            decision = replace(decision, index=fallback_index)
        elif not 0 <= decision.index < len(request.backends):
            decision = Decision(fallback_index, "fallback", "index out of range", 0.0)
    decision = replace(decision, elapsed_s=timer() - started)
    if log is not None:
        index = decision.index
        log.record(request.route, strategy.name, decision, request.backends[index].url if index is not None else "")
    return decision
