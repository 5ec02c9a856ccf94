"""An LLM route's answer cache on a real `runproxy`: two consumers asking the very same thing never get each other's
answer (0 cross-tenant hits in a test built to cause them), and no error answer (a 500, a 429, a provider's 400,
a cut stream) is ever replayed: the next identical request asks the provider again."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from routes.consumers import services
from tests.support.gateway import Gateway, serving_gateway
from tests.support.llm_providers import ProviderStub, Usage

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_KEY = "sk-provider-secret-0005"
MODEL = "gpt-4o-mini"
QUESTION: Any = [{"role": "user", "content": "What is the answer to the same question?"}]  # as the SDKs take it


@pytest.fixture
def provider() -> Iterator[ProviderStub]:
    with ProviderStub(api_key=PROVIDER_KEY) as stub:
        # Each answer names how many requests the provider had: a replay shows as an earlier number.
        stub.answer = lambda _request: f"Answer number {len(stub.requests)}."
        stub.usage = Usage(input=20, output=4, cached_input=0)
        yield stub


@pytest.fixture
def keys() -> dict[str, str]:
    found = {}
    for name in ("alice", "bob"):
        consumer = services.save_consumer({"name": name}, actor=None, source="test")
        found[name] = services.issue_key(consumer, actor=None, source="test").key
    return found


@pytest.fixture
def gateway(tmp_path, provider, keys) -> Iterator[Gateway]:
    user = get_user_model().objects.create_user("ops", "ops@example.com", "a-long-test-password-1",
                                                is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(user)
    # A new route name each run: with REDIS_URL the cache is shared by every run and named after the route.
    response = api.post("/api/routes/", {
        "name": f"cached-{uuid.uuid4().hex[:12]}", "protocol": "llm", "external_path": "/llm", "auth": "key",
        "llm": {"cache": {"ttl_s": 600}, "targets": [
            {"provider": "openai", "model": MODEL, "base_url": provider.base_url, "api_key": PROVIDER_KEY}]}},
        format="json")
    assert response.status_code == 201, response.json()
    with serving_gateway(tmp_path) as running:
        yield running


def ask(gateway: Gateway, key: str, *, stream: bool = False) -> str:
    client = openai.OpenAI(base_url=f"{gateway.url}/llm/v1", api_key=key, max_retries=0)
    if not stream:
        return client.chat.completions.create(model=MODEL, messages=QUESTION).choices[0].message.content or ""
    return "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model=MODEL, messages=QUESTION, stream=True) if chunk.choices)


def ask_anthropic(gateway: Gateway, key: str) -> str:
    client = anthropic.Anthropic(base_url=f"{gateway.url}/llm", api_key=key, max_retries=0)
    message = client.messages.create(model=MODEL, max_tokens=100, messages=QUESTION)
    return "".join(block.text for block in message.content if block.type == "text")


def test_two_consumers_asking_the_same_question_never_get_each_others_answer(gateway, provider, keys):
    alice, bob = keys["alice"], keys["bob"]
    assert ask(gateway, alice) == "Answer number 1."
    assert ask(gateway, bob) == "Answer number 2."  # the same body, another tenant: the provider is asked
    # Each gets their own answer back from the cache, whole and streamed, in any order.
    for stream in (False, True):
        assert ask(gateway, bob, stream=stream) == "Answer number 2."
        assert ask(gateway, alice, stream=stream) == "Answer number 1."
    assert len(provider.requests) == 2
    # Anthropic's front door is another key, but still one per tenant.
    assert ask_anthropic(gateway, bob) == "Answer number 3."
    assert ask_anthropic(gateway, alice) == "Answer number 4."
    assert ask_anthropic(gateway, bob) == "Answer number 3."
    assert len(provider.requests) == 4


FAILURES: dict[str, tuple[Callable[[ProviderStub], None], type[openai.APIError], bool]] = {
    "server_error": (lambda stub: stub.fail(500, times=1), openai.InternalServerError, False),
    "rate_limited": (lambda stub: stub.rate_limit(retry_after="0", times=1), openai.RateLimitError, False),
    "context_length": (lambda stub: stub.context_overflow(times=1), openai.BadRequestError, False),
    "cut_stream": (lambda stub: stub.cut_after(1, times=1), openai.APIError, True),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_an_error_answer_is_never_replayed_from_the_cache(gateway, provider, keys, failure):
    script, error, stream = FAILURES[failure]
    script(provider)
    with pytest.raises(error):
        ask(gateway, keys["alice"], stream=stream)
    assert len(provider.requests) == 1
    # The same request again: the provider is asked anew and its answer, a good one, is the one kept.
    assert ask(gateway, keys["alice"], stream=stream) == "Answer number 2."
    assert ask(gateway, keys["alice"], stream=stream) == "Answer number 2."
    assert len(provider.requests) == 2
