"""An LLM route end to end: saved through the API like an operator would, served by a real `runproxy`, called with
the official OpenAI and Anthropic SDKs holding a consumer's Rusta key, in front of loopback stub providers."""
from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from routes.consumers import services
from tests.support.gateway import Gateway, serving_gateway
from tests.support.llm_providers import ProviderStub, Usage

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_KEY = "sk-provider-secret-0001"


@pytest.fixture
def providers() -> Iterator[tuple[ProviderStub, ProviderStub]]:
    with ProviderStub(api_key=PROVIDER_KEY) as failing, ProviderStub(api_key=PROVIDER_KEY) as working:
        for stub in (failing, working):
            stub.answer = f"Answer from {stub.port}."
            stub.usage = Usage(input=40, output=8, cached_input=0)
        yield failing, working


@pytest.fixture
def consumer_key() -> str:
    billing = services.save_consumer({"name": "billing"}, actor=None, source="test")
    return services.issue_key(billing, actor=None, source="test").key


@pytest.fixture
def gateway(tmp_path, providers, consumer_key) -> Iterator[Gateway]:
    failing, working = providers
    user = get_user_model().objects.create_user("ops", "ops@example.com", "a-long-test-password-1",
                                                is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/routes/", {
        "name": "chat", "protocol": "llm", "external_path": "/llm", "auth": "key",
        "llm": {"targets": [
            {"name": "first", "provider": "openai", "model": "gpt-4o-mini", "base_url": failing.base_url,
             "api_key": PROVIDER_KEY},
            {"name": "second", "provider": "anthropic", "model": "claude-haiku", "base_url": working.base_url,
             "api_key": PROVIDER_KEY, "priority": 1}]}}, format="json")
    assert response.status_code == 201, response.json()
    shown = api.get(f"/api/routes/{response.json()['id']}/").json()
    assert PROVIDER_KEY not in str(shown) and shown["llm"]["targets"][0]["api_key"] == "<redacted>"
    with serving_gateway(tmp_path) as running:
        yield running


def test_both_sdks_with_a_consumer_key_get_answers_and_a_failing_target_falls_back(gateway, providers,
                                                                                 consumer_key) -> None:
    failing, working = providers
    failing.fail(500, times=2)
    oai = openai.OpenAI(base_url=f"{gateway.url}/llm/v1", api_key=consumer_key, max_retries=0)
    claude = anthropic.Anthropic(base_url=f"{gateway.url}/llm", api_key=consumer_key, max_retries=0)
    chat = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in oai.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Hi"}]) if chunk.choices)
    message = claude.messages.create(model="claude-haiku", max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
    assert chat.choices[0].message.content == f"Answer from {working.port}."
    assert streamed == f"Answer from {working.port}."
    assert message.content[0].text == f"Answer from {failing.port}."  # the first target is back
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (40, 8)
    # The providers got the route's key, never the consumer's.
    assert all(consumer_key not in str(request.headers) for stub in providers for request in stub.requests)


def test_a_wrong_key_is_refused_in_the_sdks_own_error(gateway) -> None:
    oai = openai.OpenAI(base_url=f"{gateway.url}/llm/v1", api_key="rk_not-a-key-of-anyone-0000000000000",
                        max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 401 and caught.value.type == "invalid_api_key"
