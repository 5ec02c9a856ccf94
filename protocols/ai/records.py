"""What AI routing did, as an operator reads it: counters for /metrics, the recent decisions and anomaly verdicts
for the admin page, and the decision mix per minute over the last hour.

One `DecisionLog` per data plane, written on the event loop with plain dict and deque updates (no I/O). The
metrics flusher calls `snapshot()` once a second: it merges every live log and LLM client of the process into one
JSON document, which metrics.procfiles writes with the worker's other figures and adds up over the workers.

The snapshot's shape (lists of rows, so that it survives JSON):

    decisions         [[route, strategy, source, count]]
    decision_seconds  [[route, strategy, [bucket counts per DECISION_BOUNDS and +Inf..., sum]]]
    fallbacks         [[route, strategy, reason, count]]
    agreement         [[route, agreed, compared]]     local model's confident answers checked against the LLM
    llm               [[provider, outcome, calls, input_tokens, output_tokens]]   outcome "ok" or an error kind
    anomalies         [[route, action, count]]        action "shadow", "routed" or "refused"
    minutes           [[minute start (epoch s), route, source, count]]   the last MINUTES minutes
    recent            [{"at", "route", "strategy", "source", "index", "backend", "reason", "elapsed_ms"}]
    verdicts          [{"at", "route", "client", "score", "reasons", "action"}]
"""
from __future__ import annotations

import time
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocols.ai.decide import SOURCES, Decision, Source

if TYPE_CHECKING:
    from protocols.ai.providers import LlmClient

RECENT_DECISIONS = 200
RECENT_VERDICTS = 100
SHOWN_RECENT = 50  # of each ring, in a snapshot
MINUTES = 60
# Decision time buckets (seconds): local answers take microseconds, an LLM's hundreds of milliseconds.
DECISION_BOUNDS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
ANOMALY_ACTIONS = ("shadow", "routed", "refused")


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision in the operator's log; `at` is wall time, `backend` the chosen backend's URL ("" for none)."""

    at: float
    route: str
    strategy: str
    source: Source
    index: int | None
    backend: str
    reason: str
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """One request anomaly detection found anomalous, and what was done with it."""

    at: float
    route: str
    client: str
    score: float
    reasons: tuple[str, ...]
    action: str


class DecisionLog:
    """The recent decisions and verdicts (bounded rings) and the counters behind the snapshot; all plain data.

    `counts`: {(route, strategy, source): decisions}; `fallbacks`: {(route, strategy, reason): decisions}, the
    reasons being short fixed phrases so that the key space stays small; `agreement`: {route: (agreed,
    compared)}, how often the local model's confident answer matched the LLM's when both answered.
    """

    __slots__ = ("recent", "verdicts", "counts", "fallbacks", "agreement", "seconds", "anomalies", "minutes",
                 "clock", "__weakref__")

    def __init__(self, size: int = RECENT_DECISIONS, *, clock: Callable[[], float] = time.time) -> None:
        self.recent: deque[DecisionRecord] = deque(maxlen=size)
        self.verdicts: deque[VerdictRecord] = deque(maxlen=RECENT_VERDICTS)
        self.counts: dict[tuple[str, str, Source], int] = {}
        self.fallbacks: dict[tuple[str, str, str], int] = {}
        self.agreement: dict[str, tuple[int, int]] = {}
        self.seconds: dict[tuple[str, str], list[float]] = {}
        self.anomalies: dict[tuple[str, str], int] = {}
        self.minutes: dict[tuple[int, str, str], int] = {}
        self.clock = clock

    def record(self, route: str, strategy: str, decision: Decision, backend: str = "") -> None:
        now = self.clock()
        self.recent.append(DecisionRecord(now, route, strategy, decision.source, decision.index, backend,
                                          decision.reason, decision.elapsed_s))
        key = (route, strategy, decision.source)
        self.counts[key] = self.counts.get(key, 0) + 1
        if decision.source == "fallback":
            reason_key = (route, strategy, decision.reason)
            self.fallbacks[reason_key] = self.fallbacks.get(reason_key, 0) + 1
        histogram = self.seconds.get((route, strategy))
        if histogram is None:
            histogram = self.seconds[(route, strategy)] = [0] * (len(DECISION_BOUNDS) + 1) + [0.0]
        histogram[bisect_left(DECISION_BOUNDS, decision.elapsed_s)] += 1
        histogram[-1] += decision.elapsed_s
        minute_key = (int(now // 60) * 60, route, decision.source)
        minutes = self.minutes
        if minute_key not in minutes:
            _forget_before(minutes, minute_key[0] - (MINUTES - 1) * 60)
        minutes[minute_key] = minutes.get(minute_key, 0) + 1

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

    def verdict(self, route: str, client: str, score: float, reasons: tuple[str, ...], action: str) -> None:
        """An anomalous request and what was done with it (one of ANOMALY_ACTIONS)."""
        self.verdicts.append(VerdictRecord(self.clock(), route, client, score, reasons, action))
        key = (route, action)
        self.anomalies[key] = self.anomalies.get(key, 0) + 1


def _forget_before(minutes: dict[tuple[int, str, str], int], oldest: int) -> None:
    for key in [key for key in minutes if key[0] < oldest]:
        del minutes[key]


# The logs and clients of this process, for snapshot(); weak, so a closed data plane's go with it.
_LOGS: weakref.WeakSet[DecisionLog] = weakref.WeakSet()
_CLIENTS: weakref.WeakSet[LlmClient] = weakref.WeakSet()


def register(log: DecisionLog, client: LlmClient | None = None) -> None:
    """Include `log` (and `client`'s call counts) in this process's snapshot."""
    _LOGS.add(log)
    if client is not None:
        _CLIENTS.add(client)


def snapshot(logs: Iterable[DecisionLog] | None = None, clients: Iterable[LlmClient] | None = None,
             now: float | None = None) -> dict[str, Any]:
    """Every registered log and client merged into one JSON-friendly document (the module docstring's shape)."""
    logs = list(_LOGS if logs is None else logs)
    clients = list(_CLIENTS if clients is None else clients)
    now = time.time() if now is None else now
    decisions: dict[tuple[str, str, str], int] = {}
    fallbacks: dict[tuple[str, str, str], int] = {}
    agreement: dict[str, list[int]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    anomalies: dict[tuple[str, str], int] = {}
    minutes: dict[tuple[int, str, str], int] = {}
    recent: list[DecisionRecord] = []
    verdicts: list[VerdictRecord] = []
    oldest_minute = int(now // 60) * 60 - (MINUTES - 1) * 60
    for log in logs:
        _add(decisions, log.counts)
        _add(fallbacks, log.fallbacks)
        _add(anomalies, log.anomalies)
        _add(minutes, {key: value for key, value in log.minutes.items() if key[0] >= oldest_minute})
        for route, (agreed, compared) in log.agreement.items():
            row = agreement.setdefault(route, [0, 0])
            row[0] += agreed
            row[1] += compared
        for key, histogram in log.seconds.items():
            target = seconds.get(key)
            if target is None:
                seconds[key] = list(histogram)
            else:
                for index, value in enumerate(histogram):
                    target[index] += value
        recent += log.recent
        verdicts += log.verdicts
    llm: dict[tuple[str, str], list[int]] = {}
    for client in clients:
        for (provider, outcome), counts in client.stats().items():
            row = llm.setdefault((provider, outcome), [0, 0, 0])
            row[0] += counts["calls"]
            row[1] += counts["input_tokens"]
            row[2] += counts["output_tokens"]
    recent.sort(key=lambda record: record.at)
    verdicts.sort(key=lambda record: record.at)
    return {
        "decisions": [[*key, value] for key, value in sorted(decisions.items())],
        "decision_seconds": [[*key, histogram] for key, histogram in sorted(seconds.items())],
        "fallbacks": [[*key, value] for key, value in sorted(fallbacks.items())],
        "agreement": [[route, *row] for route, row in sorted(agreement.items())],
        "llm": [[*key, *row] for key, row in sorted(llm.items())],
        "anomalies": [[*key, value] for key, value in sorted(anomalies.items())],
        "minutes": [[*key, value] for key, value in sorted(minutes.items())],
        "recent": [{"at": r.at, "route": r.route, "strategy": r.strategy, "source": r.source, "index": r.index,
                    "backend": r.backend, "reason": r.reason, "elapsed_ms": round(r.elapsed_s * 1000, 3)}
                   for r in recent[-SHOWN_RECENT:]],
        "verdicts": [{"at": v.at, "route": v.route, "client": v.client, "score": round(v.score, 2),
                      "reasons": list(v.reasons), "action": v.action} for v in verdicts[-SHOWN_RECENT:]],
    }


def _add(target: dict[Any, int], source: dict[Any, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value
