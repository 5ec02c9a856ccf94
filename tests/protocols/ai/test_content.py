"""content_analysis against a fake LLM on loopback: learning the LLM's hidden rule, the decision cache, the time
budget, provider failures, background labelling, and decide_within's guard around any strategy.

The hidden rule is test_classifier's: French text goes to backend 1, source code to 2, anything else to 0. The
stub knows it only as a table from the body excerpt it is shown to the label.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from random import Random
from typing import Any, TypeVar

import pytest

from protocols.ai.classifier import OnlineClassifier
from protocols.ai.content import LABELLERS_BUSY, LABELLING, UNREADABLE, ContentAnalysis
from protocols.ai.decide import (
    BUDGET_EXCEEDED,
    BackendView,
    Decision,
    RoutingRequest,
    decide_within,
)
from protocols.ai.prompt import body_excerpt
from protocols.ai.providers import LlmClient, ProviderSettings
from protocols.ai.records import DecisionLog
from tests.support.ai_corpus import RULE, corpus
from tests.support.llm_stubs import LlmStub
from tests.support.upstream import refused_port

T = TypeVar("T")
ROUTE = "support"
STRATEGY = "content_analysis"
BACKENDS = (
    BackendView(0, "http://general.internal", "questions in English, JSON documents"),
    BackendView(1, "http://fr.internal", "French speakers"),
    BackendView(2, "http://dev.internal", "source code review"),
)
WARM_UP = 1500  # the LLM is asked about ~200 of them: once confident, the model answers the rest
HELD_OUT = 600


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request_for(text: str, route: str = ROUTE, path: str = "/ask") -> RoutingRequest:
    return RoutingRequest(route=route, method="POST", path=path, template="/ask", headers=[(b"x-lang", b"?")],
                          body=text.encode(), backends=BACKENDS)


def answers_by_body(labels: dict[str, int]) -> Callable[[str], str]:
    """A stub answer that reads the body excerpt out of the routing prompt and labels it from `labels`."""
    def answer(user_text: str) -> str:
        body = user_text.split("Body (first characters):\n", 1)[1].rsplit("\nBackends:", 1)[0]
        return json.dumps({"index": labels[body]})

    return answer


def rule_table(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
    return {body_excerpt(text.encode()): RULE[kind] for kind, text in pairs}


def with_engine(scenario: Callable[[LlmStub, ContentAnalysis], Awaitable[T]], **options: Any) -> T:
    """Run `scenario` on a fresh loop with a stub, an LLM client and a ContentAnalysis asking that stub."""
    async def main() -> T:
        async with LlmStub() as stub:
            client = LlmClient()
            base_url = options.pop("base_url", stub.base_url)
            settings = ProviderSettings("openai", "test-model", api_key=stub.api_key, base_url=base_url,
                                        timeout_s=5.0, max_concurrency=64)
            values: dict[str, Any] = {"budget_s": 2.0, "cache_ttl_s": 60.0, "log": DecisionLog()}
            values.update(options)
            engine = ContentAnalysis(client, settings, **values)
            try:
                return await scenario(stub, engine)
            finally:
                await engine.aclose()
                await client.aclose()

    return asyncio.run(main())


# --- Learning the LLM's rule ----------------------------------------------------------------------------------

def test_after_warm_up_it_routes_by_the_llm_rule_and_asks_the_llm_for_at_most_5_percent():
    warm_up, held_out = list(corpus(seed=21, count=WARM_UP)), list(corpus(seed=22, count=HELD_OUT))

    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.answer = answers_by_body(rule_table(warm_up + held_out))
        for _, text in warm_up:
            await decide_within(engine, request_for(text), None, engine.log)
        asked_before = len(stub.requests)
        engine.log = log = DecisionLog()
        stub.delay = 0.3  # a realistic LLM: the held-out requests it is asked about wait for it, concurrently
        decisions = await asyncio.gather(*(decide_within(engine, request_for(text), None, log)
                                           for _, text in held_out))
        right = sum(decision.index == RULE[kind] for decision, (kind, _) in zip(decisions, held_out, strict=True))
        asked = len(stub.requests) - asked_before
        sources = log.sources(ROUTE, STRATEGY)
        assert right >= 0.95 * HELD_OUT, f"{right} of {HELD_OUT} held-out decisions follow the rule; {sources}"
        assert asked <= 0.05 * HELD_OUT, f"the LLM was asked about {asked} of {HELD_OUT} held-out requests"
        assert sum(sources.values()) == HELD_OUT
        assert sources["model"] + sources["cache"] >= 0.95 * HELD_OUT
        assert all(d.elapsed_s >= 0.3 for d in decisions if d.source == "llm")

    with_engine(scenario, rng=Random(7))


def test_a_sampled_confident_answer_is_checked_against_the_llm_and_counted_in_agreement():
    labels = {"Bonjour, la facture est en retard.": 1, "Bonjour, le colis est en retard.": 0}

    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.answer = answers_by_body(labels)
        first, second = (request_for(text) for text in labels)
        assert (await engine.decide(first)).source == "llm"
        decision = await engine.decide(second)
        assert (decision.source, decision.index) == ("model", 1)  # it knows one label only
        await engine.drain()
        assert len(stub.requests) == 2
        assert engine.log.agreement == {ROUTE: (0, 1)}
        assert engine.log.agreement_rate(ROUTE) == 0.0
        assert (await engine.decide(second)).index == 0  # the LLM's label was learned and cached

    with_engine(scenario, confidence=0.5, sample_rate=1.0,
                new_classifier=lambda classes: OnlineClassifier(classes, warmup=0))


# --- The decision cache ---------------------------------------------------------------------------------------

def test_the_same_request_again_is_answered_from_the_cache_without_asking_the_llm():
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.answer = lambda user_text: '{"index": 2}'
        first = await engine.decide(request_for("def f(x): return x"))
        second = await engine.decide(request_for("def f(x): return x", path="/ask?again=1"))
        assert (first.source, first.index) == ("llm", 2)
        assert (second.source, second.index) == ("cache", 2)
        assert len(stub.requests) == 1

    with_engine(scenario)


def test_a_cached_decision_expires_after_its_ttl():
    clock = FakeClock()

    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        request = request_for("SELECT 1;")
        await engine.decide(request)
        clock.now += 29.9
        assert (await engine.decide(request)).source == "cache"
        clock.now += 0.1
        assert (await engine.decide(request)).source == "llm"
        assert len(stub.requests) == 2

    with_engine(scenario, cache_ttl_s=30.0, clock=clock)


def test_another_route_or_body_does_not_share_a_cached_decision():
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        await engine.decide(request_for("SELECT 1;"))
        assert (await engine.decide(request_for("SELECT 1;", route="other"))).source == "llm"
        assert (await engine.decide(request_for("SELECT 2;"))).source == "llm"
        assert len(stub.requests) == 3

    with_engine(scenario)


# --- The time budget and the LLM's failures -------------------------------------------------------------------

def test_an_llm_slower_than_the_budget_falls_back_within_the_budget_and_its_late_answer_is_kept():
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.delay = 0.5
        stub.answer = lambda user_text: '{"index": 1}'
        decision = await decide_within(engine, request_for("Bonjour !"), 2, engine.log)
        assert (decision.index, decision.source, decision.reason) == (2, "fallback", BUDGET_EXCEEDED)
        assert 0.1 <= decision.elapsed_s < stub.delay  # cut at the budget, not left to wait for the LLM
        assert engine.log.fallbacks == {(ROUTE, STRATEGY, BUDGET_EXCEEDED): 1}
        await engine.drain()
        later = await decide_within(engine, request_for("Bonjour !"), 2, engine.log)
        assert (later.index, later.source) == (1, "cache")

    with_engine(scenario, budget_s=0.1)


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda stub: stub.rate_limit(), "llm rate_limited"),
    (lambda stub: stub.fail(500), "llm server"),
    (lambda stub: stub.garbage(), "llm bad_answer"),
    (lambda stub: None, "llm unreachable"),  # the settings point at a refused port
], ids=["429", "500", "garbage", "refused"])
def test_a_provider_error_falls_back_and_is_counted(setup: Callable[[LlmStub], None], reason: str):
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        setup(stub)
        decision = await decide_within(engine, request_for("Où est ma commande ?"), 2, engine.log)
        assert (decision.index, decision.source, decision.reason) == (2, "fallback", reason)
        assert engine.log.fallbacks == {(ROUTE, STRATEGY, reason): 1}
        assert engine.log.sources(ROUTE, STRATEGY)["fallback"] == 1

    options = {"base_url": f"http://127.0.0.1:{refused_port()}"} if reason == "llm unreachable" else {}
    with_engine(scenario, **options)


@pytest.mark.parametrize("answer", ["I would rather not say.", '{"index": 7}'], ids=["unreadable", "out-of-range"])
def test_an_answer_naming_no_backend_falls_back(answer: str):
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.answer = lambda user_text: answer
        decision = await decide_within(engine, request_for("hello"), None, engine.log)
        assert (decision.index, decision.source, decision.reason) == (None, "fallback", UNREADABLE)
        assert (await engine.decide(request_for("hello"))).source == "fallback"  # nothing was cached

    with_engine(scenario)


# --- Learning in the background -------------------------------------------------------------------------------

def test_learn_async_falls_back_at_once_and_the_background_label_serves_the_next_request():
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.delay = 0.3
        stub.answer = lambda user_text: '{"index": 2}'
        first = await decide_within(engine, request_for("fn main() {}"), 0, engine.log)
        assert (first.index, first.source, first.reason) == (0, "fallback", LABELLING)
        assert first.elapsed_s < stub.delay  # answered without waiting for the LLM
        again = await engine.decide(request_for("fn main() {}"))
        assert again.source == "fallback"
        await engine.drain()
        assert len(stub.requests) == 1  # the second request did not label the same content again
        later = await engine.decide(request_for("fn main() {}"))
        assert (later.index, later.source) in {(2, "cache"), (2, "model")}

    with_engine(scenario, learn="async")


def test_background_labels_beyond_max_background_are_skipped_not_queued():
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.hold()
        await engine.decide(request_for("one"))
        busy = await engine.decide(request_for("two"))
        assert (busy.index, busy.source, busy.reason) == (None, "fallback", LABELLERS_BUSY)
        assert engine.skipped_labels == 1
        stub.release()
        await engine.drain()
        assert len(stub.requests) == 1

    with_engine(scenario, learn="async", max_background=1)


def test_concurrent_requests_with_the_same_content_share_one_llm_call():
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.delay = 0.1
        stub.answer = lambda user_text: '{"index": 1}'
        decisions = await asyncio.gather(*(engine.decide(request_for("Salut !")) for _ in range(5)))
        assert {(d.index, d.source) for d in decisions} == {(1, "llm")}
        assert len(stub.requests) == 1

    with_engine(scenario)


def test_aclose_cancels_the_labels_in_flight():
    async def scenario(stub: LlmStub, engine: ContentAnalysis) -> None:
        stub.hold()
        await engine.decide(request_for("one"))
        await engine.decide(request_for("two"))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(engine.aclose(), 1.0)
        stub.release()
        assert engine.client.stats() == {}  # neither call was answered: both were cancelled mid-way

    with_engine(scenario, learn="async")


# --- decide_within: any strategy, bypassed when it misbehaves -------------------------------------------------

class Scripted:
    """A custom strategy that sleeps, then raises or answers as told."""

    def __init__(self, name: str, budget_s: float = 0.05, sleep_s: float = 0.0, index: int | None = 1,
                 error: Exception | None = None) -> None:
        self.name, self.budget_s, self.sleep_s, self.index, self.error = name, budget_s, sleep_s, index, error

    async def decide(self, request: RoutingRequest) -> Decision:
        await asyncio.sleep(self.sleep_s)
        if self.error is not None:
            raise self.error
        return Decision(self.index, "model", "scripted", 0.0)


def decided(strategy: Scripted, fallback_index: int | None = 0) -> tuple[Decision, DecisionLog]:
    log = DecisionLog()
    decision = asyncio.run(decide_within(strategy, request_for("x"), fallback_index, log))
    return decision, log


def test_a_strategy_that_overruns_its_budget_is_bypassed_and_counted():
    decision, log = decided(Scripted("slow", budget_s=0.05, sleep_s=5.0), fallback_index=2)
    assert (decision.index, decision.source, decision.reason) == (2, "fallback", BUDGET_EXCEEDED)
    assert 0.05 <= decision.elapsed_s < 1.0
    assert log.fallbacks == {(ROUTE, "slow", BUDGET_EXCEEDED): 1}
    assert log.counts == {(ROUTE, "slow", "fallback"): 1}


def test_a_strategy_that_raises_is_bypassed_and_counted():
    decision, log = decided(Scripted("broken", error=RuntimeError("boom")), fallback_index=None)
    assert (decision.index, decision.source, decision.reason) == (None, "fallback", "error: RuntimeError")
    assert log.fallbacks == {(ROUTE, "broken", "error: RuntimeError"): 1}


def test_a_strategy_naming_no_backend_of_the_request_is_bypassed():
    decision, _ = decided(Scripted("wrong", index=3), fallback_index=0)
    assert (decision.index, decision.source, decision.reason) == (0, "fallback", "index out of range")


def test_a_strategy_with_no_preference_gets_the_fallback_index_and_keeps_its_source_and_reason():
    decision, log = decided(Scripted("shrug", index=None), fallback_index=1)
    assert (decision.index, decision.source, decision.reason) == (1, "model", "scripted")
    assert log.fallbacks == {}


def test_a_strategy_answering_in_time_is_recorded_as_it_answered():
    decision, log = decided(Scripted("quick", index=2))
    assert (decision.index, decision.source) == (2, "model")
    [record] = log.recent
    assert (record.route, record.strategy, record.source, record.index, record.reason) == (
        ROUTE, "quick", "model", 2, "scripted")
    assert record.elapsed_s == decision.elapsed_s


def test_the_decision_log_keeps_the_latest_decisions_and_counts_them_all():
    log = DecisionLog(size=3)
    for index in range(5):
        log.record(ROUTE, "s", Decision(index % 3, "model", "r", 0.0))
    assert [record.index for record in log.recent] == [2, 0, 1]
    assert log.sources(ROUTE, "s") == {"model": 5, "llm": 0, "cache": 0, "fallback": 0}
