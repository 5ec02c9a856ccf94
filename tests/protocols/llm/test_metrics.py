"""protocols.llm.metrics: what one LLM request's Outcome adds to the counters and histograms /metrics shows, and
the real gateway's outcomes (a fallback, a streamed and a whole answer from a loopback provider) counted with the
provider's usage and its exact price."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from protocols.llm.exchange import Fallback, Outcome
from protocols.llm.formats.chat import Usage
from protocols.llm.metrics import TPS_BOUNDS, LlmMetrics, snapshot
from protocols.recorder import LATENCY_BOUNDS
from tests.protocols.llm.test_gateway_front_doors import LlmServer, sdk_clients, serve, target
from tests.support.llm_providers import ProviderStub
from tests.support.llm_wire import Usage as StubUsage


def answered(output: int = 40, first_token_s: float | None = 0.25, **extra: Any) -> Outcome:
    usage = Usage(input_tokens=1200, output_tokens=output, cached_input_tokens=1000)
    return Outcome(status=200, target="main", model="gpt-4o", usage=usage, first_token_s=first_token_s,
                   complete=True, cost_micros=2150, **extra)


def bucket_of(histogram: list[float], bounds: tuple[float, ...]) -> list[int]:
    """The indexes of the buckets holding observations."""
    return [index for index in range(len(bounds) + 1) if histogram[index]]


def test_an_answer_counts_its_request_tokens_by_kind_and_cost_for_its_route_model_and_consumer():
    metrics = LlmMetrics()
    metrics.record("chat", "alice", answered(), 1.25, streamed=False)
    metrics.record("chat", "alice", answered(), 1.25, streamed=True)
    rows = snapshot(metrics)
    assert rows["requests"] == [["chat", "gpt-4o", "alice", "2xx", 2]]
    assert rows["tokens"] == [["chat", "gpt-4o", "alice", "cached_input", 2000],
                              ["chat", "gpt-4o", "alice", "input", 2400],
                              ["chat", "gpt-4o", "alice", "output", 80]]
    assert rows["cost"] == [["chat", "gpt-4o", "alice", 4300]]


def test_consumers_are_counted_apart_and_a_request_without_one_has_an_empty_consumer():
    metrics = LlmMetrics()
    metrics.record("chat", "alice", answered(), 1.0, streamed=False)
    metrics.record("chat", None, answered(), 1.0, streamed=False)
    assert [row[2] for row in snapshot(metrics)["cost"]] == ["", "alice"]


def test_a_streamed_answer_observes_its_time_to_first_token_and_its_output_speed():
    metrics = LlmMetrics()
    # 40 tokens in the 0.5 s after the first one: 80 tokens per second.
    metrics.record("chat", "alice", answered(output=40, first_token_s=0.25), 0.75, streamed=True)
    rows = snapshot(metrics)
    [[route, model, ttft]] = rows["ttft"]
    [[_, _, tps]] = rows["tps"]
    assert (route, model) == ("chat", "gpt-4o")
    assert bucket_of(ttft, LATENCY_BOUNDS) == [LATENCY_BOUNDS.index(0.25)]
    assert ttft[-1] == 0.25
    assert bucket_of(tps, TPS_BOUNDS) == [TPS_BOUNDS.index(100.0)]
    assert tps[-1] == 80.0


def test_a_whole_answer_adds_to_no_timing_histogram():
    metrics = LlmMetrics()
    metrics.record("chat", "alice", answered(first_token_s=1.0), 1.0, streamed=False)
    rows = snapshot(metrics)
    assert (rows["ttft"], rows["tps"]) == ([], [])
    assert rows["requests"] == [["chat", "gpt-4o", "alice", "2xx", 1]]


def test_a_stream_cut_before_any_output_has_a_first_token_time_but_no_speed():
    metrics = LlmMetrics()
    metrics.record("chat", "alice", answered(output=0, first_token_s=0.1, error="stream_cut"), 0.3, streamed=True)
    rows = snapshot(metrics)
    assert len(rows["ttft"]) == 1 and rows["tps"] == []


def test_a_refusal_counts_a_request_without_model_tokens_or_cost():
    metrics = LlmMetrics()
    metrics.record("chat", "alice", Outcome(status=429, error="budget_exceeded"), 0.001, streamed=True)
    rows = snapshot(metrics)
    assert rows["requests"] == [["chat", "", "alice", "4xx", 1]]
    assert (rows["tokens"], rows["cost"], rows["ttft"], rows["tps"]) == ([], [], [], [])


def test_fallbacks_are_counted_per_route_target_and_reason():
    metrics = LlmMetrics()
    passed_over = [Fallback("primary", "rate_limited"), Fallback("secondary", "server_error")]
    metrics.record("chat", "alice", answered(fallbacks=passed_over), 1.0, streamed=False)
    metrics.record("chat", "bob", answered(fallbacks=[Fallback("primary", "rate_limited")]), 1.0, streamed=False)
    nobody = Outcome(status=503, error="no_target", fallbacks=[Fallback("primary", "unreachable")])
    metrics.record("chat", "bob", nobody, 1.0, streamed=False)
    rows = snapshot(metrics)
    assert rows["fallbacks"] == [["chat", "primary", "rate_limited", 2], ["chat", "primary", "unreachable", 1],
                                 ["chat", "secondary", "server_error", 1]]
    assert ["chat", "", "bob", "5xx", 1] in rows["requests"]


def test_a_snapshot_does_not_change_when_later_requests_are_counted():
    metrics = LlmMetrics()
    metrics.record("chat", "alice", answered(), 0.75, streamed=True)
    before = snapshot(metrics)
    metrics.record("chat", "alice", answered(), 0.75, streamed=True)
    assert before["ttft"][0][2][-1] == 0.25 and before["requests"][0][-1] == 1


@dataclass
class TimedServer(LlmServer):
    """LlmServer that also keeps each request's time from its arrival to the end of its answer."""

    elapsed: list[float] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        await super().__call__(scope, receive, send)
        self.elapsed.append(time.perf_counter() - started)


def test_the_gateways_outcomes_count_the_providers_usage_at_its_exact_price_and_the_fallback():
    prices = {"input": 2.5, "output": 10.0, "cached_input": 1.25}
    with ProviderStub() as failing, ProviderStub() as answering:
        failing.fail(500, times=2)
        answering.usage = StubUsage(input=200, output=40, cached_input=1000)
        answering.chunk_delay = 0.002
        app = TimedServer([target("primary", "openai", "gpt-4o", failing, price_per_million=prices),
                           target("backup", "openai", "gpt-4o-mini", answering, price_per_million=prices)],
                          extra={"budgets": [{"amount": 100, "period": "day"}]})
        runner = serve(app)
        try:
            oai, _ = sdk_clients(runner.port)
            oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
            chunks = list(oai.chat.completions.create(model="gpt-4o", stream=True,
                                                      stream_options={"include_usage": True},
                                                      messages=[{"role": "user", "content": "Hi"}]))
        finally:
            runner.stop()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 40
    metrics = LlmMetrics()
    for outcome, elapsed, streamed in zip(app.outcomes, app.elapsed, (False, True), strict=True):
        metrics.record("chat", "alice", outcome, elapsed, streamed=streamed)
    rows = snapshot(metrics)
    assert rows["requests"] == [["chat", "gpt-4o-mini", "alice", "2xx", 2]]
    assert rows["tokens"] == [["chat", "gpt-4o-mini", "alice", "cached_input", 2000],
                              ["chat", "gpt-4o-mini", "alice", "input", 2400],
                              ["chat", "gpt-4o-mini", "alice", "output", 80]]
    # 200 uncached x 2.5 + 40 x 10 + 1000 cached x 1.25 per million = 2150 micro-units a request.
    assert rows["cost"] == [["chat", "gpt-4o-mini", "alice", 4300]]
    assert rows["fallbacks"] == [["chat", "primary", "server_error", 2]]
    [[_, _, ttft]] = rows["ttft"]
    [[_, _, tps]] = rows["tps"]
    assert sum(ttft[:-1]) == 1 and sum(tps[:-1]) == 1
