"""An LLM route's tokens-per-minute limit holds across 3 real `runproxy` processes on one Redis: 50 requests sent
at once, spread over the gateways, use at most the limit plus one request's max_tokens, and every refused one is
OpenAI's 429 `token_limit_exceeded` that the official SDK raises as RateLimitError."""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from protocols.llm.formats.translate import parse_request
from protocols.llm.tokens import counter_for
from tests.support.gateway import Gateway, start_gateway
from tests.support.llm_providers import ProviderStub, Usage

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the scaled-out suite)")

PROVIDER_KEY = "sk-provider-secret-0003"
GATEWAYS = 3
REQUESTS = 50
MAX_TOKENS = 50  # M: what each request asks for at most
LIMIT = 600  # L: tokens per minute for the whole route
MESSAGES: Any = [{"role": "user", "content": "Hi"}]  # the SDK's message type, as plain JSON
PROMPT = 8  # the prompt's tokens as Rusta counts them (checked below): a request reserves PROMPT + MAX_TOKENS
# The provider reports less than a request reserves, so settling gives tokens back while other requests are being
# admitted: the race a shared limit must survive.
USAGE = Usage(input=PROMPT, output=20, cached_input=0)
# Enough of the minute left for starting the burst and ending it in the same window (it takes a second or two).
MINUTE_LEFT_S = 20


@dataclass
class Result:
    """One request's end: the usage of an answer, or the refusal the SDK raised."""

    tokens: int = 0
    refused: openai.RateLimitError | None = None


@pytest.fixture
def provider() -> Iterator[ProviderStub]:
    with ProviderStub(api_key=PROVIDER_KEY) as stub:
        stub.usage = USAGE
        yield stub


@pytest.fixture
def gateways(tmp_path, provider) -> Iterator[list[Gateway]]:
    user = get_user_model().objects.create_user("ops", "ops@example.com", "a-long-test-password-1",
                                                is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(user)
    # A new route name each run: its counters in Redis are named after it, so earlier runs' tokens do not count.
    response = api.post("/api/routes/", {
        "name": f"tpm-{uuid.uuid4().hex[:12]}", "protocol": "llm", "external_path": "/llm", "auth": "none",
        "llm": {"targets": [{"provider": "openai", "model": "gpt-4o-mini", "base_url": provider.base_url,
                             "api_key": PROVIDER_KEY}],
                "token_limits": [{"tokens_per_minute": LIMIT, "per": []}]}}, format="json")
    assert response.status_code == 201, response.json()
    started: list[Gateway] = []
    try:
        for index in range(GATEWAYS):
            (tmp_path / f"gateway{index}").mkdir()
            started.append(start_gateway(tmp_path / f"gateway{index}",
                                         extra_env={"REDIS_URL": os.environ["REDIS_URL"]}))
        for gateway in started:
            gateway.wait_version(1)
        yield started
    finally:
        for gateway in started:
            assert gateway.stop() == 0


def ask(gateway: Gateway, ready: threading.Barrier) -> Result:
    client = openai.OpenAI(base_url=f"{gateway.url}/llm/v1", api_key="unused", max_retries=0, timeout=30)
    ready.wait()
    try:
        chat = client.chat.completions.create(model="gpt-4o-mini", max_tokens=MAX_TOKENS,
                                              messages=MESSAGES)
    except openai.RateLimitError as exc:
        return Result(refused=exc)
    assert chat.usage is not None
    return Result(tokens=chat.usage.total_tokens)


def test_the_prompt_counts_as_the_reservation_above_assumes():
    request = parse_request("openai", {"model": "gpt-4o-mini", "max_tokens": MAX_TOKENS, "messages": MESSAGES})
    assert counter_for("gpt-4o-mini").count_request(request) == PROMPT


def wait_for_room_in_the_minute() -> None:
    """The limit's window is the UTC minute: a burst across its end would rightly be allowed twice the limit."""
    left = 60 - time.time() % 60
    if left < MINUTE_LEFT_S:
        time.sleep(left + 0.2)


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_over_three_gateways_overshoot_the_limit_by_at_most_one_max_tokens(
        gateways, provider):
    wait_for_room_in_the_minute()
    minute = int(time.time() // 60)
    ready = threading.Barrier(REQUESTS)
    with ThreadPoolExecutor(REQUESTS) as pool:
        futures = [pool.submit(ask, gateways[index % GATEWAYS], ready) for index in range(REQUESTS)]
        results = [future.result(timeout=60) for future in futures]
    assert int(time.time() // 60) == minute, "the burst crossed a minute's end: the premise of the test failed"

    admitted = [result for result in results if result.refused is None]
    refused = [result.refused for result in results if result.refused is not None]
    used = sum(result.tokens for result in admitted)
    assert used <= LIMIT + MAX_TOKENS
    # The limit was reached, and not kept by refusing too early: while fewer than LIMIT // reservation requests
    # were admitted, what was counted (their reservations at most) left room for one more.
    assert refused and len(admitted) >= LIMIT // (PROMPT + MAX_TOKENS)
    # Only admitted requests reached the provider, each answered with the usage it reported.
    assert len(provider.requests) == len(admitted)
    assert {result.tokens for result in admitted} == {USAGE.input + USAGE.output}
    for error in refused:
        assert error.status_code == 429 and error.type == "token_limit_exceeded"
        assert isinstance(error.body, dict)  # OpenAI's error object, as the SDK read it
        assert set(error.body) >= {"message", "type", "param", "code"}
        assert f"{LIMIT} tokens per minute" in error.message
        assert 1 <= int(error.response.headers["retry-after"]) <= 60
