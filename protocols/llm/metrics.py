"""What LLM routes did, for /metrics: requests, tokens, cost, time to first token, tokens per second, fallbacks.

One `record` per answered (or refused) request of an LLM route, from its exchange's Outcome; plain dicts, no I/O,
read on the worker's event loop by the flusher (metrics.flusher) through `snapshot`. The snapshot's shape, which
metrics.procfiles sums over workers (the first COUNTER_WIDTHS[name] fields of a row are its key):

    requests   [[route, model, consumer, status_class, n]]
    tokens     [[route, model, consumer, kind, n]]          kind: input (the whole prompt, cached tokens and
                                                             tokens written to the provider's cache included),
                                                             output, cached_input
    cost       [[route, model, consumer, micros]]           integer micro-units of the route's budget currency
    ttft       [[route, model, [counts per LATENCY_BOUNDS and +Inf..., sum]]]   seconds, streamed answers
    tps        [[route, model, [counts per TPS_BOUNDS and +Inf..., sum]]]       output tokens per second
    fallbacks  [[route, target, reason, n]]

Beside the cumulative counters, `window` gathers what the requests since the last `take_window` spent, per
(route, model, consumer): [requests, input, output, cached_input tokens, cost micros]. The flusher takes it every
tick into the stored LLM spend history (metrics.llm_points), as it takes the recorder's window.

`model` is the model of the target that answered ("" when none did: a refusal, or every target passed over);
`consumer` is "" for requests without one. Consumers are bounded by the Consumer table, models by the routes'
targets, so the label sets stay small.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from protocols.recorder import LATENCY_BOUNDS, status_class

if TYPE_CHECKING:
    from protocols.llm.exchange import Outcome

# Output tokens per second of a streamed answer: from a slow local model (1-5) to the fastest hosted ones (1000+).
TPS_BOUNDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
TOKEN_KINDS = ("input", "output", "cached_input")
COUNTER_WIDTHS = {"requests": 4, "tokens": 4, "cost": 3, "ttft": 2, "tps": 2, "fallbacks": 3}
# The figures of a spend window's cell, in order.
WINDOW_FIELDS = ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cost_micros")
SpendKey = tuple[str, str, str]  # route, model, consumer


def _new_histogram(bounds: tuple[float, ...]) -> list[float]:
    """Bucket counts (one per bound, then +Inf) followed by the sum of the observations."""
    return [0] * (len(bounds) + 1) + [0.0]


def _rounded(histogram: list[float]) -> list[float]:
    """A copy for the snapshot (the loop goes on writing the original), its sum rounded to 6 decimals."""
    return [*histogram[:-1], round(histogram[-1], 6)]


def _observe(histograms: dict[tuple[str, str], list[float]], key: tuple[str, str], bounds: tuple[float, ...],
             value: float) -> None:
    histogram = histograms.get(key)
    if histogram is None:
        histogram = histograms[key] = _new_histogram(bounds)
    histogram[bisect_left(bounds, value)] += 1
    histogram[-1] += value


class LlmMetrics:
    """Per (route, model, consumer): requests by status class, tokens by kind and cost; per (route, model): time
    to first token and output tokens per second of streamed answers; per (route, target, reason): fallbacks."""

    __slots__ = ("requests", "tokens", "cost", "ttft", "tps", "fallbacks", "window")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str], int] = {}
        self.tokens: dict[tuple[str, str, str, str], int] = {}
        self.cost: dict[tuple[str, str, str], int] = {}
        self.ttft: dict[tuple[str, str], list[float]] = {}
        self.tps: dict[tuple[str, str], list[float]] = {}
        self.fallbacks: dict[tuple[str, str, str], int] = {}
        self.window: dict[SpendKey, list[int]] = {}

    def record(self, route: str, consumer: str | None, outcome: Outcome, elapsed_s: float, *,
               streamed: bool) -> None:
        """Count one request of `route`; `elapsed_s` is the time to the end of its answer from when its exchange
        began (Outcome.first_token_s's start; a start a little earlier only lowers the speed a little), `streamed`
        whether the client asked for a stream. The timing histograms take streamed answers only: a whole answer's
        first token is its last, so its "time to first token" would be the provider's whole latency."""
        model = outcome.model or ""
        who = consumer or ""
        key = (route, model, who, status_class(outcome.status))
        self.requests[key] = self.requests.get(key, 0) + 1
        cell = self.window.get((route, model, who))
        if cell is None:
            cell = self.window[(route, model, who)] = [0, 0, 0, 0, 0]
        cell[0] += 1
        usage = outcome.usage
        if usage is not None:
            tokens = self.tokens
            for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens),
                                ("cached_input", usage.cached_input_tokens)):
                token_key = (route, model, who, kind)
                tokens[token_key] = tokens.get(token_key, 0) + count
            cost_key = (route, model, who)
            self.cost[cost_key] = self.cost.get(cost_key, 0) + outcome.cost_micros
            cell[1] += usage.input_tokens
            cell[2] += usage.output_tokens
            cell[3] += usage.cached_input_tokens
            cell[4] += outcome.cost_micros
        first = outcome.first_token_s
        if streamed and first is not None:
            _observe(self.ttft, (route, model), LATENCY_BOUNDS, first)
            generating = elapsed_s - first
            if usage is not None and usage.output_tokens > 0 and generating > 0:
                _observe(self.tps, (route, model), TPS_BOUNDS, usage.output_tokens / generating)
        for fallback in outcome.fallbacks:
            fallback_key = (route, fallback.target, fallback.reason)
            self.fallbacks[fallback_key] = self.fallbacks.get(fallback_key, 0) + 1

    def take_window(self) -> dict[SpendKey, list[int]]:
        """Hand over what was spent since the last call (on the loop, like Recorder.take_window); a new window
        starts empty. The cumulative counters are not touched."""
        window, self.window = self.window, {}
        return window


# This process's LLM metrics: every LLM request counts here (tests give their own).
METRICS = LlmMetrics()


def empty() -> dict[str, Any]:
    """The snapshot of a gateway whose LLM routes answered nothing yet."""
    return {name: [] for name in COUNTER_WIDTHS}


def take_window(metrics: LlmMetrics = METRICS) -> dict[SpendKey, list[int]]:
    """This process's spend window (LlmMetrics.take_window), for the flusher."""
    return metrics.take_window()


def snapshot(metrics: LlmMetrics = METRICS) -> dict[str, Any]:
    """The metrics as JSON rows, for /metrics (the module docstring's shape)."""
    return {
        "requests": [[*key, value] for key, value in sorted(metrics.requests.items())],
        "tokens": [[*key, value] for key, value in sorted(metrics.tokens.items())],
        "cost": [[*key, value] for key, value in sorted(metrics.cost.items())],
        "ttft": [[*key, _rounded(histogram)] for key, histogram in sorted(metrics.ttft.items())],
        "tps": [[*key, _rounded(histogram)] for key, histogram in sorted(metrics.tps.items())],
        "fallbacks": [[*key, value] for key, value in sorted(metrics.fallbacks.items())],
    }
