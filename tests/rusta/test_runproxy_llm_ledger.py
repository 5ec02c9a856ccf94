"""The spend ledger of a real `runproxy`: for streamed, cut, fallback and cached requests, the tokens and cost on the
admin listener's /metrics equal what the loopback providers reported (or, for a cut stream, what Rusta's token
counter gives for what was streamed) times the route's price_per_million, each request rounded up to a micro-unit
as documented; a request answered from the cache adds nothing."""
from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

import anthropic
import openai
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from protocols.llm.formats.translate import parse_request
from protocols.llm.tokens import counter_for
from routes.consumers import services
from tests.support.gateway import Gateway, http, serving_gateway
from tests.support.llm_providers import ProviderStub, Usage

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_KEY = "sk-provider-secret-0004"
PRIMARY_MODEL, BACKUP_MODEL = "gpt-4o-mini", "claude-haiku"
# Prices with decimals, so that a per-request rounding or a float sum would show.
PRIMARY_PRICES = {"input": "0.15", "output": "0.6", "cached_input": "0.075"}
BACKUP_PRICES = {"input": "0.8", "output": "4.0", "cached_input": "0.08"}
PRIMARY_USAGE = Usage(input=40, output=8, cached_input=10)
BACKUP_USAGE = Usage(input=30, output=12, cached_input=5)
CONSUMERS = ("streamer", "cutter", "faller", "cacher")
LINE = re.compile(r'^(\w+)\{(.*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Spent:
    """What one request should add to the ledger: tokens by kind (input: the whole prompt) and exact cost."""

    input: int
    output: int
    cached_input: int
    micros: int


def priced(uncached: int, output: int, cached: int, prices: dict[str, str]) -> Spent:
    """A price per million tokens is micro-units per token; a request's cost is rounded up once."""
    exact = (uncached * Decimal(prices["input"]) + output * Decimal(prices["output"])
             + cached * Decimal(prices["cached_input"]))
    return Spent(uncached + cached, output, cached, int(exact.to_integral_value(ROUND_CEILING)))


def reported(usage: Usage, prices: dict[str, str]) -> Spent:
    return priced(usage.input, usage.output, usage.cached_input, prices)


@pytest.fixture
def providers() -> Iterator[tuple[ProviderStub, ProviderStub]]:
    with ProviderStub(api_key=PROVIDER_KEY) as primary, ProviderStub(api_key=PROVIDER_KEY) as backup:
        primary.answer = "The primary model answers in quite a few words, one frame for each of them."
        primary.usage, backup.usage = PRIMARY_USAGE, BACKUP_USAGE
        backup.answer = "The backup model answers."
        yield primary, backup


@pytest.fixture
def keys() -> dict[str, str]:
    """A Rusta API key for each consumer: each scenario is counted under its own consumer label."""
    found = {}
    for name in CONSUMERS:
        consumer = services.save_consumer({"name": name}, actor=None, source="test")
        found[name] = services.issue_key(consumer, actor=None, source="test").key
    return found


@pytest.fixture
def route() -> str:
    """A new name each run: with REDIS_URL the answer cache is shared and named after the route."""
    return f"ledger-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def gateway(tmp_path, providers, keys, route) -> Iterator[Gateway]:
    primary, backup = providers
    user = get_user_model().objects.create_user("ops", "ops@example.com", "a-long-test-password-1",
                                                is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/routes/", {
        "name": route, "protocol": "llm", "external_path": "/llm", "auth": "key",
        "llm": {"cache": {}, "targets": [
            {"name": "primary", "provider": "openai", "model": PRIMARY_MODEL, "base_url": primary.base_url,
             "api_key": PROVIDER_KEY, "price_per_million": {k: float(v) for k, v in PRIMARY_PRICES.items()}},
            {"name": "backup", "provider": "anthropic", "model": BACKUP_MODEL, "base_url": backup.base_url,
             "api_key": PROVIDER_KEY, "priority": 1,
             "price_per_million": {k: float(v) for k, v in BACKUP_PRICES.items()}}]}}, format="json")
    assert response.status_code == 201, response.json()
    with serving_gateway(tmp_path) as running:
        yield running


def openai_client(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/llm/v1", api_key=key, max_retries=0)


def chat(gateway: Gateway, key: str, text: str, *, stream: bool = False) -> str:
    client = openai_client(gateway, key)
    messages: Any = [{"role": "user", "content": text}]
    if not stream:
        return client.chat.completions.create(model=PRIMARY_MODEL, messages=messages).choices[0].message.content or ""
    return "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model=PRIMARY_MODEL, messages=messages, stream=True) if chunk.choices)


def series(text: str, route: str) -> dict[tuple[str, frozenset[tuple[str, str]]], str]:
    """The route's samples on /metrics: (family, labels but the route) -> the value as written."""
    found = {}
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        labels = dict(LABEL.findall(match.group(2)))
        if labels.pop("route", None) == route:
            found[(match.group(1), frozenset(labels.items()))] = match.group(3)
    return found


def requests_by_consumer(samples: dict[tuple[str, frozenset[tuple[str, str]]], str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (family, labels), value in samples.items():
        if family == "rusta_llm_requests_total":
            counts[dict(labels)["consumer"]] += int(value)
    return counts


def flushed(gateway: Gateway, route: str, requests: dict[str, int]) -> dict[tuple[str, frozenset[tuple[str, str]]],
                                                                            str]:
    """/metrics once the workers' flusher has written every request sent (counted per consumer)."""
    deadline = time.monotonic() + 20
    samples: dict[tuple[str, frozenset[tuple[str, str]]], str] = {}
    while time.monotonic() < deadline:
        _, _, body = http("GET", gateway.admin_url + "/metrics", headers={"Connection": "close"})
        samples = series(body.decode(), route)
        if requests_by_consumer(samples) == Counter(requests):
            return samples
        time.sleep(0.2)
    raise AssertionError(f"the requests {requests} were not all on /metrics: {samples}")


def ledger(samples: dict[tuple[str, frozenset[tuple[str, str]]], str]) -> dict[tuple[str, str], Spent]:
    """Tokens and cost per (consumer, model), read back from the samples; cost in micro-units, exactly."""
    cells: dict[tuple[str, str], dict[str, int]] = {}
    for (family, labels), value in samples.items():
        if family not in ("rusta_llm_tokens_total", "rusta_llm_cost_total"):
            continue
        label = dict(labels)
        cell = cells.setdefault((label["consumer"], label["model"]), {})
        if family == "rusta_llm_tokens_total":
            cell[label["kind"]] = int(value)
        elif family == "rusta_llm_cost_total":
            micros = Decimal(value) * 1_000_000
            assert micros == micros.to_integral_value(), f"{value} is not a whole number of micro-units"
            cell["micros"] = int(micros)
    return {key: Spent(cell.get("input", 0), cell.get("output", 0), cell.get("cached_input", 0),
                       cell.get("micros", 0)) for key, cell in cells.items()}


def add(*spent: Spent) -> Spent:
    return Spent(sum(s.input for s in spent), sum(s.output for s in spent), sum(s.cached_input for s in spent),
                 sum(s.micros for s in spent))


def test_streamed_cut_fallback_and_cached_requests_cost_exactly_the_reported_usage_at_the_configured_prices(
        gateway, providers, keys, route):
    primary, backup = providers
    primary_spent = reported(PRIMARY_USAGE, PRIMARY_PRICES)
    backup_spent = reported(BACKUP_USAGE, BACKUP_PRICES)

    # Streamed, through both front doors: OpenAI's usage chunk (Rusta asks for it though the client did not) and
    # the same provider's usage behind Anthropic's stream.
    assert chat(gateway, keys["streamer"], "Stream me an answer.", stream=True) == primary.answer
    claude = anthropic.Anthropic(base_url=f"{gateway.url}/llm", api_key=keys["streamer"], max_retries=0)
    with claude.messages.stream(model=PRIMARY_MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": "Stream me another."}]) as stream:
        assert "".join(stream.text_stream) == primary.answer

    # Cut after two words: no usage came, so Rusta counts the prompt and what was streamed.
    primary.cut_after(2, times=1)
    cut_text = "Start an answer you will not finish."
    with pytest.raises(openai.APIError):
        chat(gateway, keys["cutter"], cut_text, stream=True)
    cut = primary.requests[-1]
    assert cut.cut and cut.content_frames == 2
    counter = counter_for(PRIMARY_MODEL)
    prompt = counter.count_request(parse_request("openai", {"model": PRIMARY_MODEL, "stream": True,
                                                            "messages": [{"role": "user", "content": cut_text}]}))
    cut_spent = priced(prompt, counter.count(cut.streamed_text), 0, PRIMARY_PRICES)
    assert cut_spent.output > 0

    # The first target fails with 500: the backup answers, whole and streamed, and is priced at its own prices.
    primary.fail(500, times=2)
    assert chat(gateway, keys["faller"], "Answer from wherever you can.") == backup.answer
    assert chat(gateway, keys["faller"], "Stream from wherever you can.", stream=True) == backup.answer

    # The same request three times (the last streamed): the provider is asked once; the replays cost nothing.
    asked = len(primary.requests)
    for streamed in (False, False, True):
        assert chat(gateway, keys["cacher"], "Cache this answer.", stream=streamed) == primary.answer
    assert len(primary.requests) == asked + 1

    samples = flushed(gateway, route, {"streamer": 2, "cutter": 1, "faller": 2, "cacher": 3})
    assert ledger(samples) == {
        ("streamer", PRIMARY_MODEL): add(primary_spent, primary_spent),
        ("cutter", PRIMARY_MODEL): cut_spent,
        ("faller", BACKUP_MODEL): add(backup_spent, backup_spent),
        ("cacher", PRIMARY_MODEL): primary_spent,
    }
    fallbacks = {dict(labels)["target"] + "/" + dict(labels)["reason"]: int(value)
                 for (family, labels), value in samples.items() if family == "rusta_llm_fallbacks_total"}
    assert fallbacks == {"primary/server_error": 2}


def test_the_cost_figures_above_are_the_prices_times_the_usage():
    # 40 uncached input at 0.15, 10 cached at 0.075 and 8 output at 0.6 per million: 11.55 micro-units, so 12.
    assert reported(PRIMARY_USAGE, PRIMARY_PRICES) == Spent(50, 8, 10, 12)
    # 30 at 0.8, 5 at 0.08 and 12 at 4.0: 72.4 micro-units, so 73.
    assert reported(BACKUP_USAGE, BACKUP_PRICES) == Spent(35, 12, 5, 73)
