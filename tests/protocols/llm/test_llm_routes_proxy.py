"""LLM routes through the real proxy listener: an `llm` route's front doors under its path, its guard and token
limits applied, its refusals in the client's own format, and the request recorded with the target as backend."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from protocols.llm.metrics import METRICS, snapshot
from protocols.table import RouteSpec
from tests.support.llm_providers import ProviderStub, Usage
from tests.support.proxy import ProxyServer

KEY = "sk-stub-key"


@pytest.fixture
def stub() -> Iterator[ProviderStub]:
    with ProviderStub() as server:
        server.answer = "Hello from the provider."
        server.usage = Usage(input=30, output=6, cached_input=0)
        yield server


def llm_route(stub: ProviderStub, **block: Any) -> RouteSpec:
    targets = [{"name": "main", "provider": "openai", "model": "gpt-4o-mini", "base_url": stub.base_url,
                "api_key": KEY}]
    return RouteSpec(id=901, name="chat", external_path="/llm", methods=("GET", "POST"), protocol="llm",
                     backends=(), policies={"llm": {"targets": targets, **block}})


def client(proxy: ProxyServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{proxy.port}/llm/v1", api_key="anything", max_retries=0)


def test_an_llm_route_answers_the_openai_sdk_under_its_path(stub: ProviderStub) -> None:
    with ProxyServer([llm_route(stub)]) as proxy:
        proxy.app.recorder.take_window()  # the process's recorder: what earlier tests left in it goes
        answer = client(proxy).chat.completions.create(model="gpt-4o-mini",
                                                       messages=[{"role": "user", "content": "Hi"}])
        windows = proxy.app.recorder.take_window()
    assert answer.choices[0].message.content == "Hello from the provider."
    assert answer.usage.prompt_tokens == 30
    assert [(key[0], key[2], key[3]) for key in windows if key[0] == "chat"] == [("chat", 200, "main")]


def test_the_routes_guard_refuses_in_the_clients_format_before_any_provider_is_asked(stub: ProviderStub) -> None:
    route = llm_route(stub, guard={"detect": ["card"]})
    with ProxyServer([route]) as proxy:
        with pytest.raises(openai.BadRequestError) as caught:
            client(proxy).chat.completions.create(model="gpt-4o-mini", messages=[
                {"role": "user", "content": "My card is 4111 1111 1111 1111"}])
    assert "guard.detect.card" in str(caught.value) and "4111" not in str(caught.value)
    assert stub.requests == []


def test_a_token_limit_refuses_with_429_naming_it_once_spent(stub: ProviderStub) -> None:
    route = llm_route(stub, token_limits=[{"tokens_per_minute": 400, "per": []}])
    with ProxyServer([route]) as proxy:
        openai_client = client(proxy)
        first = openai_client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                      messages=[{"role": "user", "content": "Hi"}])
        second = openai_client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                       messages=[{"role": "user", "content": "Hi"}])
        with pytest.raises(openai.RateLimitError) as caught:
            # 72 tokens spent: a prompt of a few tokens plus 330 more would pass 400.
            openai_client.chat.completions.create(model="gpt-4o-mini", max_tokens=330,
                                                  messages=[{"role": "user", "content": "Hi"}])
        # ... but 300 more fit, as the two answers were settled at what they used (36), not what they reserved.
        fits = openai_client.chat.completions.create(model="gpt-4o-mini", max_tokens=300,
                                                     messages=[{"role": "user", "content": "Hi"}])
    assert first.usage.total_tokens == second.usage.total_tokens == 36
    assert caught.value.status_code == 429 and "token" in str(caught.value).lower()
    assert int(caught.value.response.headers["retry-after"]) <= 60
    assert fits.usage.total_tokens == 36
    assert len(stub.requests) == 3


def test_a_path_under_the_route_that_is_no_front_door_is_a_404_in_openais_format(stub: ProviderStub) -> None:
    with ProxyServer([llm_route(stub)]) as proxy:
        reply = proxy.call("POST", "/llm/v1/nothing", [("Host", "gw"), ("Content-Type", "application/json")], b"{}")
    assert reply.status == 404 and reply.json()["error"]["type"] == "not_found_error"


def cost_and_tokens(route: str) -> tuple[int, dict[str, int]]:
    """What the process's LLM metrics hold for `route`: cost in micro-units, tokens by kind."""
    rows = snapshot(METRICS)
    cost = sum(row[-1] for row in rows["cost"] if row[0] == route)
    tokens: dict[str, int] = {}
    for row in rows["tokens"]:
        if row[0] == route:
            tokens[row[3]] = tokens.get(row[3], 0) + row[-1]
    return cost, tokens


def test_spend_is_the_providers_usage_times_the_targets_prices_exactly_streamed_or_not(stub: ProviderStub) -> None:
    stub.usage = Usage(input=30, output=6, cached_input=10)  # 40 prompt tokens, 10 of them read from cache
    route = llm_route(stub)
    route.policies["llm"]["targets"][0]["price_per_million"] = {"input": 2.5, "output": 10, "cached_input": 1.25}
    before_cost, before_tokens = cost_and_tokens("chat")
    with ProxyServer([route]) as proxy:
        openai_client = client(proxy)
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
        list(openai_client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                   messages=[{"role": "user", "content": "Hi"}]))
    cost, tokens = cost_and_tokens("chat")
    # 30 uncached x 2.5 + 10 cached x 1.25 + 6 x 10 per million = 147.5 micro-units, rounded up once: 148.
    assert cost - before_cost == 2 * 148
    assert {kind: tokens[kind] - before_tokens.get(kind, 0) for kind in tokens} == {
        "input": 80, "output": 12, "cached_input": 20}


def test_embeddings_go_to_a_target_that_has_them_and_come_back_in_the_sdks_encoding(stub: ProviderStub) -> None:
    route = llm_route(stub)
    route.policies["llm"]["targets"] = [
        {"name": "claude", "provider": "anthropic", "model": "claude-haiku", "base_url": stub.base_url,
         "api_key": KEY},  # no embeddings API: passed over
        {"name": "local", "provider": "ollama", "model": "nomic-embed-text", "base_url": stub.base_url}]
    with ProxyServer([route]) as proxy:
        answer = client(proxy).embeddings.create(model="nomic-embed-text", input=["one", "two"])
    assert [len(item.embedding) for item in answer.data] == [8, 8]
    assert [request.path for request in stub.requests] == ["/api/embed"]


def test_the_model_lists_name_the_routes_targets_in_each_sdks_shape(stub: ProviderStub) -> None:
    import anthropic

    route = llm_route(stub)
    route.policies["llm"]["targets"].append({"name": "claude", "provider": "anthropic", "model": "claude-haiku",
                                             "base_url": stub.base_url, "api_key": KEY})
    with ProxyServer([route]) as proxy:
        openai_ids = [model.id for model in client(proxy).models.list()]
        claude = anthropic.Anthropic(base_url=f"http://127.0.0.1:{proxy.port}/llm", api_key="x", max_retries=0)
        anthropic_ids = [model.id for model in claude.models.list()]
        with pytest.raises(openai.NotFoundError):
            client(proxy).models.retrieve("gpt-9")
    assert openai_ids == anthropic_ids == ["gpt-4o-mini", "claude-haiku"]
    assert stub.requests == []  # no provider was asked
