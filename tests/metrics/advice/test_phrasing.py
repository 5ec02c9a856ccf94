"""metrics.advice.phrasing and the engine: the gateway-wide LLM words the findings and may propose a draft, which is
checked like any other; invalid drafts (of every kind) are refused with the reason, a slow provider is cut at the
budget; without a provider the templates speak. Against a stub provider speaking the real wire formats."""
from __future__ import annotations

import json
import time

import pytest

from metrics.advice import phrasing
from metrics.advice.engine import advise
from routes.services import save_settings
from tests.metrics.advice.conftest import forget_advice
from tests.support.advice_series import NOW, hourly, route
from tests.support.llm_stubs import LlmStub

pytestmark = pytest.mark.django_db
FAST, SLOW = "10.0.0.5:8080", "10.0.0.5:8081"
TEMPLATE_START = "route users: backend 10.0.0.5:8081 answers with a p50"


@pytest.fixture
def slow_backend():
    route("users", (8080, 8081), read_timeout_ms=1000)  # a timeout that fits: the latency finding alone
    route("orders")
    hourly("users", FAST, 24, 300, latency=0.02)
    hourly("users", SLOW, 24, 300, latency=0.2)


@pytest.fixture
def stub():
    with LlmStub() as server:
        yield server


def configure(stub: LlmStub, provider: str = "openai") -> None:
    save_settings({"ai": {"provider": provider, "model": "advisor-1", "api_key": stub.api_key,
                          "base_url": stub.base_url}}, actor=None, source="test", partial=True)


def answering(stub: LlmStub, answer: object) -> None:
    stub.answer = lambda _question: answer if isinstance(answer, str) else json.dumps(answer)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_llms_words_and_valid_draft_are_used(slow_backend, stub, provider):
    configure(stub, provider)
    answering(stub, {"route": "users", "text": "Users: 8081 is ten times slower; balance by least connections.",
                     "draft": {"load_balancing_strategy": "least_connections"}})
    [item] = advise(NOW).items
    assert item.text_source == "llm" and item.text.startswith("Users: 8081 is ten times slower")
    assert item.draft is not None and item.draft.patch == {"load_balancing_strategy": "least_connections"}
    assert item.llm_refusal is None
    question = json.loads(stub.requests[0].body["messages"][-1]["content"] if provider == "openai"
                          else stub.requests[0].body["messages"][0]["content"])
    assert question["route"] == "users" and question["allowed_fields"] == ["load_balancing_strategy"]
    assert question["evidence"]["backends"][SLOW]["count"] == 7200
    assert phrasing.outcomes()["draft_accepted"] == 1


INVALID = [
    ("unknown key", {"route": "users", "text": "x", "draft": {"load_balancer": "latency_aware"}},
     "unknown key: load_balancer"),
    ("unknown key in a block", {"route": "users", "text": "x", "draft": {"circuit_breaker": {"treshold": 3}}},
     "unknown key: circuit_breaker.treshold"),
    ("bad value", {"route": "users", "text": "x", "draft": {"load_balancing_strategy": "fastest"}},
     "invalid: load_balancing_strategy"),
    ("wrong type", {"route": "users", "text": "x", "draft": {"load_balancing_strategy": 5}},
     "invalid: load_balancing_strategy"),
    ("wrong route in the answer", {"route": "orders", "text": "x", "draft": {"load_balancing_strategy": "random"}},
     "wrong route"),
    ("wrong route in the draft", {"route": "users", "text": "x",
                                  "draft": {"name": "orders", "load_balancing_strategy": "random"}}, "wrong route"),
    ("not JSON", "Switch users to latency_aware, it will be faster.", "not JSON"),
    ("a disallowed field", {"route": "users", "text": "x", "draft": {"backends": []}}, "field not allowed: backends"),
    ("a draft that is no object", {"route": "users", "text": "x", "draft": ["latency_aware"]}, "not a draft"),
]


def test_every_invalid_draft_is_refused_and_the_rules_own_draft_and_text_kept(slow_backend, stub):
    configure(stub)
    refused = []
    for kind, answer, reason in INVALID:
        answering(stub, answer)
        forget_advice()  # a new answer for the same finding
        [item] = advise(NOW).items
        refused.append(kind)
        assert item.llm_refusal is not None and item.llm_refusal.startswith(reason), (kind, item.llm_refusal)
        assert item.text.startswith(TEMPLATE_START) and item.text_source == "template", kind
        assert item.draft is not None and item.draft.patch == {"load_balancing_strategy": "latency_aware"}, kind
    assert len(refused) == len(INVALID) == 9


def test_the_refusal_is_counted_and_shown_in_the_api_document(slow_backend, stub):
    from metrics.api.advice import advice_document

    configure(stub)
    answering(stub, {"route": "users", "text": "x", "draft": {"backends": []}})
    document = advice_document()
    [item] = document["findings"]
    assert item["llm_refusal"].startswith("field not allowed: backends")
    assert document["llm"] == {"model": "openai/advisor-1",
                               "outcomes": {"phrased": 0, "draft_accepted": 0, "refused": 1, "timeout": 0,
                                            "error": 0}}


def test_a_slow_provider_is_cut_at_the_budget_and_the_template_used(slow_backend, stub, settings):
    settings.RUSTA_ADVICE_LLM_BUDGET_MS = 300
    configure(stub)
    stub.delay = 5.0
    started = time.monotonic()
    [item] = advise(NOW).items
    assert time.monotonic() - started < stub.delay  # did not wait for the answer
    assert item.text_source == "template" and item.text.startswith(TEMPLATE_START)
    assert phrasing.outcomes()["timeout"] == 1


def test_an_answer_is_kept_per_finding(slow_backend, stub):
    configure(stub)
    answering(stub, {"route": "users", "text": "Users has a slow backend."})
    first = advise(NOW).items[0]
    second = advise(NOW).items[0]
    assert first.text == second.text == "Users has a slow backend." and first.id == second.id
    assert len(stub.requests) == 1
    assert phrasing.outcomes()["phrased"] == 1


def test_without_a_provider_the_templates_speak(slow_backend, stub):
    [item] = advise(NOW).items
    assert item.text_source == "template" and item.text.startswith(TEMPLATE_START)
    assert stub.requests == []
