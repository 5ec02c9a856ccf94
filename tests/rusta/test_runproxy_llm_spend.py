"""An LLM route's daily token limit outlives a restart: a real `runproxy` nearly spends it, stops, and the next one
refuses, on the embedded default (each process writes its counters) and with REDIS_URL (the persist task copies
Redis's; Redis is emptied between the runs, as a Redis without persistence would be after a restart)."""
from __future__ import annotations

import os
from collections.abc import Iterator

import openai
import pytest
import redis
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from metrics import tasks
from metrics.models import LlmSpend
from routes.consumers import services
from tests.support.gateway import Gateway, serving_gateway
from tests.support.llm_providers import ProviderStub, Usage

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_URL = os.environ.get("REDIS_URL", "")
PROVIDER_KEY = "sk-provider-secret-0002"
# Each answer reports 48 tokens; a request reserves its prompt plus max_tokens 10. Two answers use 96 of 100: a
# third request cannot fit in the day, whichever process asks.
DAILY_LIMIT = 100


@pytest.fixture
def provider() -> Iterator[ProviderStub]:
    with ProviderStub(api_key=PROVIDER_KEY) as stub:
        stub.usage = Usage(input=40, output=8, cached_input=0)
        yield stub


@pytest.fixture
def consumer_key() -> str:
    billing = services.save_consumer({"name": "billing"}, actor=None, source="test")
    return services.issue_key(billing, actor=None, source="test").key


@pytest.fixture(autouse=True)
def no_budget_counters_in_redis() -> Iterator[None]:
    """Counters other tests left in the suite's Redis would count against this route's limit, and this test's
    against theirs."""
    empty_redis()
    yield
    empty_redis()


def empty_redis() -> None:
    if REDIS_URL:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match="rusta:llm:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def llm_route(provider) -> None:
    user = get_user_model().objects.create_user("ops", "ops@example.com", "a-long-test-password-1",
                                                is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/routes/", {
        "name": "spend", "protocol": "llm", "external_path": "/llm", "auth": "key",
        "llm": {"targets": [{"provider": "openai", "model": "gpt-4o-mini", "base_url": provider.base_url,
                             "api_key": PROVIDER_KEY}],
                "token_limits": [{"tokens_per_day": DAILY_LIMIT, "per": ["consumer"]}]}}, format="json")
    assert response.status_code == 201, response.json()


def ask(gateway: Gateway, consumer_key: str) -> str:
    client = openai.OpenAI(base_url=f"{gateway.url}/llm/v1", api_key=consumer_key, max_retries=0)
    chat = client.chat.completions.create(model="gpt-4o-mini", max_tokens=10,
                                          messages=[{"role": "user", "content": "Hi"}])
    return chat.choices[0].message.content or ""


def test_a_daily_token_limit_spent_before_a_restart_is_still_spent_after_it(tmp_path, llm_route, consumer_key):
    with serving_gateway(tmp_path) as first:
        assert ask(first, consumer_key) and ask(first, consumer_key)
        if REDIS_URL:
            assert tasks.persist_llm_spend() == 1  # what beat sends every 10 s
    # Embedded: the gateway process wrote its counters when it stopped; with Redis the task did.
    assert list(LlmSpend.objects.values_list("key", "used")) == [("route:spend|tokens:day|consumer=billing", 96)]
    empty_redis()  # a Redis that lost everything with the restart

    with serving_gateway(tmp_path) as second:
        with pytest.raises(openai.RateLimitError) as refused:
            ask(second, consumer_key)
    assert refused.value.status_code == 429
    assert refused.value.type == "token_limit_exceeded"
    assert "100 tokens per day per consumer" in refused.value.message


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")
def test_a_redis_emptied_while_the_gateway_runs_gets_the_spend_back_from_the_task(tmp_path, llm_route,
                                                                                  consumer_key):
    with serving_gateway(tmp_path) as gateway:
        assert ask(gateway, consumer_key) and ask(gateway, consumer_key)
        assert tasks.persist_llm_spend() == 1
        empty_redis()
        tasks.persist_llm_spend()  # the next run finds Redis lower than the table and raises it back
        with pytest.raises(openai.RateLimitError):
            ask(gateway, consumer_key)

