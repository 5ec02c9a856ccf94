"""The LLM front doors on a real listener: the official OpenAI and Anthropic SDKs, pointed at Rusta, get correct
answers, streamed and not, from every provider kind (loopback stubs speaking each real format), and a target
failing with 429 or 500 before its first byte costs the client nothing: the next target answers and the fallback
is recorded with its reason."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
import uvicorn

from protocols.llm.config import llm_policy
from protocols.llm.exchange import Outcome
from protocols.llm.gateway import LlmGateway
from protocols.llm.health import DEFAULT_RESILIENCE, Resilience
from protocols.llm.tokens import counter_for
from protocols.resilience import breaker_policy, retry_policy
from protocols.upstream import UpstreamClient
from tests.support.background import UvicornThread
from tests.support.llm_providers import ProviderStub, Usage

PREFIX = "/llm"
KEY = "sk-stub-key"


def target(name: str, provider: str, model: str, stub: ProviderStub, **extra: Any) -> dict[str, Any]:
    """A `targets` entry for a stub provider."""
    return {"name": name, "provider": provider, "model": model, "base_url": stub.base_url, "api_key": KEY, **extra}


@dataclass
class LlmServer:
    """An ASGI app serving one LLM route at PREFIX with the `llm` block of `targets`, recording each exchange's
    Outcome."""

    targets: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    gateway: LlmGateway | None = None
    resilience: Resilience = DEFAULT_RESILIENCE
    listed_order: bool = True  # ask the targets in the listed order (the tests script who fails first)

    def __post_init__(self) -> None:
        self.policy = llm_policy({"targets": self.targets, **self.extra}, route_name="chat")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.gateway is None:
            self.gateway = LlmGateway(UpstreamClient())
        subpath = scope["path"][len(PREFIX):]
        order = list(range(len(self.targets))) if self.listed_order else None
        consumer = dict(scope["headers"]).get(b"x-test-consumer", b"alice").decode()
        self.outcomes.append(await self.gateway.serve(1, "chat", self.policy, subpath, scope["method"], receive,
                                                      send, consumer=consumer, order=order,
                                                      resilience=self.resilience))

    async def aclose(self) -> None:
        if self.gateway is not None:
            await self.gateway.upstream.aclose()


def serve(app: LlmServer) -> UvicornThread[LlmServer]:
    def server(asgi: LlmServer) -> uvicorn.Server:
        return uvicorn.Server(uvicorn.Config(asgi, loop="uvloop", lifespan="off", log_level="warning"))

    runner = UvicornThread(lambda: app, server, "test-llm")
    runner.start()
    return runner


@pytest.fixture(scope="module")
def stubs() -> Iterator[tuple[ProviderStub, ProviderStub]]:
    with ProviderStub() as first, ProviderStub() as second:
        yield first, second


@pytest.fixture
def fresh(stubs: tuple[ProviderStub, ProviderStub]) -> tuple[ProviderStub, ProviderStub]:
    for stub in stubs:
        stub.behave()
        stub.answer = f"Answer from {stub.port}."
        stub.usage = Usage(input=21, output=5, cached_input=0)
    return stubs


def sdk_clients(port: int) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    base = f"http://127.0.0.1:{port}{PREFIX}"
    return (openai.OpenAI(base_url=base + "/v1", api_key="rusta-key", max_retries=0),
            anthropic.Anthropic(base_url=base, api_key="rusta-key", max_retries=0))


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama", "openai_compatible"])
def test_both_sdks_get_the_answer_streamed_and_not_from_each_provider_kind(fresh, provider: str) -> None:
    stub = fresh[0]
    app = LlmServer([target(provider, provider, "stub-model", stub)])
    runner = serve(app)
    try:
        oai, claude = sdk_clients(runner.port)
        chat = oai.chat.completions.create(model="stub-model", messages=[{"role": "user", "content": "Hi"}])
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in oai.chat.completions.create(
            model="stub-model", messages=[{"role": "user", "content": "Hi"}], stream=True) if chunk.choices)
        message = claude.messages.create(model="stub-model", max_tokens=64,
                                         messages=[{"role": "user", "content": "Hi"}])
        with claude.messages.stream(model="stub-model", max_tokens=64,
                                    messages=[{"role": "user", "content": "Hi"}]) as stream:
            anthropic_streamed = "".join(stream.text_stream)
            final = stream.get_final_message()
    finally:
        runner.stop()
    expected = f"Answer from {stub.port}."
    assert chat.choices[0].message.content == expected
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (21, 5)
    assert streamed == expected
    assert message.content[0].text == expected and message.usage.output_tokens == 5
    assert anthropic_streamed == expected and final.usage.output_tokens == 5
    assert [outcome.usage.output_tokens for outcome in app.outcomes] == [5, 5, 5, 5]
    assert all(outcome.complete and outcome.target == provider for outcome in app.outcomes)
    # The provider got the route's key, never the client's.
    assert all("rusta-key" not in str(request.headers) for request in stub.requests)


@pytest.mark.parametrize("failure", ["rate_limited", "server_error"])
def test_a_failing_first_target_costs_the_client_nothing_and_the_fallback_is_recorded(fresh, failure: str) -> None:
    first, second = fresh
    if failure == "rate_limited":
        first.rate_limit(retry_after="0", times=2)
    else:
        first.fail(500, times=2)
    app = LlmServer([target("primary", "openai", "stub-model", first),
                     target("backup", "anthropic", "stub-model", second)])
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        whole = oai.chat.completions.create(model="stub-model", messages=[{"role": "user", "content": "Hi"}])
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in oai.chat.completions.create(
            model="stub-model", messages=[{"role": "user", "content": "Hi"}], stream=True) if chunk.choices)
    finally:
        runner.stop()
    assert whole.choices[0].message.content == f"Answer from {second.port}."
    assert streamed == f"Answer from {second.port}."
    assert [(outcome.target, [(f.target, f.reason) for f in outcome.fallbacks]) for outcome in app.outcomes] == [
        ("backup", [("primary", failure)])] * 2


def test_every_target_failing_gives_the_client_the_last_refusal_in_its_own_format(fresh) -> None:
    first, second = fresh
    first.fail(503, times=1)
    second.rate_limit(retry_after="7", times=1)
    app = LlmServer([target("a", "openai", "stub-model", first),
                     target("b", "openai", "stub-model", second)])
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        with pytest.raises(openai.RateLimitError) as caught:
            oai.chat.completions.create(model="stub-model", messages=[{"role": "user", "content": "Hi"}])
    finally:
        runner.stop()
    assert caught.value.status_code == 429
    assert app.outcomes[0].error == "no_target"
    assert [f.reason for f in app.outcomes[0].fallbacks] == ["server_error", "rate_limited"]


def test_a_request_the_format_cannot_carry_is_the_clients_400_in_its_sdk(fresh) -> None:
    app = LlmServer([target("a", "anthropic", "stub-model", fresh[0])])
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        with pytest.raises(openai.BadRequestError):
            oai.chat.completions.create(model="stub-model", n=2, messages=[{"role": "user", "content": "Hi"}])
    finally:
        runner.stop()


def test_a_cut_stream_ends_with_an_error_event_and_counts_what_was_streamed(fresh) -> None:
    stub = fresh[0]
    stub.answer = "one two three four five six seven eight"
    stub.cut_after(3, times=1)
    app = LlmServer([target("a", "openai", "gpt-4o-mini", stub)])
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        received = []
        with pytest.raises(openai.APIError):
            for chunk in oai.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                     messages=[{"role": "user", "content": "Count"}]):
                if chunk.choices and chunk.choices[0].delta.content:
                    received.append(chunk.choices[0].delta.content)
    finally:
        runner.stop()
    outcome = app.outcomes[0]
    assert "".join(received) == stub.requests[-1].streamed_text == "one two three "
    assert (outcome.error, outcome.complete) == ("stream_cut", False)
    assert outcome.usage.estimated
    assert outcome.usage.output_tokens == counter_for("gpt-4o-mini").count("one two three ")
    assert outcome.usage.input_tokens > 0


def test_a_prompt_too_long_for_one_target_goes_to_a_target_with_a_larger_window(fresh) -> None:
    small, large = fresh
    small.context_overflow(times=1)
    app = LlmServer([target("small", "anthropic", "stub-model", small, context_window=8000),
                     target("same", "openai", "stub-model", small, context_window=8000),
                     target("large", "openai", "stub-model", large, context_window=128000)])
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        answer = oai.chat.completions.create(model="stub-model", messages=[{"role": "user", "content": "Long"}])
    finally:
        runner.stop()
    assert answer.choices[0].message.content == f"Answer from {large.port}."
    assert [(f.target, f.reason) for f in app.outcomes[0].fallbacks] == [("small", "context_length")]


def test_a_rate_limited_target_is_left_alone_until_its_retry_after_has_passed(fresh) -> None:
    first, second = fresh
    first.rate_limit(retry_after="30", times=1)
    app = LlmServer([target("primary", "openai", "stub-model", first),
                     target("backup", "openai", "stub-model", second)])
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        before = len(first.requests)
        for _ in range(3):
            oai.chat.completions.create(model="stub-model", messages=[{"role": "user", "content": "Hi"}])
    finally:
        runner.stop()
    assert len(first.requests) - before == 1  # asked once, then held for its Retry-After
    assert [outcome.target for outcome in app.outcomes] == ["backup"] * 3
    assert [[f.reason for f in outcome.fallbacks] for outcome in app.outcomes] == [["rate_limited"]] * 3


def test_the_time_to_the_first_token_is_measured_from_the_stream(fresh) -> None:
    stub = fresh[0]
    stub.first_token_delay = 0.2
    app = LlmServer([target("a", "openai", "stub-model", stub)])
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        list(oai.chat.completions.create(model="stub-model", stream=True,
                                         messages=[{"role": "user", "content": "Hi"}]))
    finally:
        runner.stop()
    assert app.outcomes[0].first_token_s is not None and app.outcomes[0].first_token_s >= 0.2


def test_a_cached_answer_is_replayed_to_its_consumer_only_streamed_or_not_and_never_an_error(fresh) -> None:
    stub = fresh[0]
    app = LlmServer([target("a", "openai", "stub-model", stub)], extra={"cache": {"ttl_s": 60}})
    runner = serve(app)
    ask = {"model": "stub-model", "messages": [{"role": "user", "content": "Same question"}]}
    before = len(stub.requests)
    try:
        oai, _ = sdk_clients(runner.port)
        stub.fail(500, times=1)
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(**ask)
        first = oai.chat.completions.create(**ask)  # the error was not kept: the provider is asked again
        again = oai.chat.completions.create(**ask)
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in oai.chat.completions.create(
            stream=True, **ask) if chunk.choices)
        bob = oai.chat.completions.create(**ask, extra_headers={"x-test-consumer": "bob"})
        other = oai.chat.completions.create(**{**ask, "temperature": 0.5})
    finally:
        runner.stop()
    expected = f"Answer from {stub.port}."
    assert first.choices[0].message.content == again.choices[0].message.content == streamed == expected
    assert bob.choices[0].message.content == other.choices[0].message.content == expected
    # Asked: the failure, the first answer, bob's (another tenant: never alice's answer), another temperature.
    assert len(stub.requests) - before == 4
    assert [outcome.cached for outcome in app.outcomes] == [False, False, True, True, False, False]
    assert app.outcomes[2].usage is None and app.outcomes[2].cost_micros == 0


def test_a_target_failing_in_a_row_is_left_alone_behind_its_open_breaker(fresh) -> None:
    first, second = fresh
    first.fail(500, times=3)
    resilience = Resilience(breaker_policy("chat", {"circuit_breaker": {"failure_threshold": 2, "open_s": 60}}))
    app = LlmServer([target("flaky", "openai", "stub-model", first), target("steady", "openai", "stub-model", second)],
                    resilience=resilience)
    runner = serve(app)
    before = len(first.requests)
    try:
        oai, _ = sdk_clients(runner.port)
        for _ in range(4):
            oai.chat.completions.create(model="stub-model", messages=[{"role": "user", "content": "Hi"}])
    finally:
        runner.stop()
    assert len(first.requests) - before == 2  # two failures opened its breaker; it was not asked again
    assert [[f.reason for f in outcome.fallbacks] for outcome in app.outcomes] == [
        ["server_error"], ["server_error"], ["breaker_open"], ["breaker_open"]]


def test_no_fallback_is_made_past_the_routes_retry_budget(fresh) -> None:
    first, second = fresh
    first.fail(503, times=5)
    spent = retry_policy("chat", {"retry": {"budget_ratio": 0, "budget_min_per_s": 0}})
    app = LlmServer([target("down", "openai", "stub-model", first), target("up", "openai", "stub-model", second)],
                    resilience=Resilience(retry=spent))
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        with pytest.raises(openai.APIStatusError) as caught:
            oai.chat.completions.create(model="stub-model", messages=[{"role": "user", "content": "Hi"}])
    finally:
        runner.stop()
    assert caught.value.status_code == 503
    assert [(f.target, f.reason) for f in app.outcomes[0].fallbacks] == [("down", "server_error"), ("up", "budget")]


def test_a_latency_aware_route_asks_the_target_with_the_fastest_first_token_first(fresh) -> None:
    slow, fast = fresh
    slow.first_token_delay = 0.15
    app = LlmServer([target("slow", "openai", "stub-model", slow), target("fast", "openai", "stub-model", fast)],
                    resilience=Resilience(latency_aware=True), listed_order=False)
    runner = serve(app)
    try:
        oai, _ = sdk_clients(runner.port)
        for _ in range(6):
            list(oai.chat.completions.create(model="stub-model", stream=True,
                                             messages=[{"role": "user", "content": "Hi"}]))
    finally:
        runner.stop()
    # Each is measured once (never-measured targets go first), then the fast one takes every request.
    assert sorted(outcome.target for outcome in app.outcomes[:2]) == ["fast", "slow"]
    assert [outcome.target for outcome in app.outcomes[2:]] == ["fast"] * 4
