"""Asking the gateway-wide `ai` LLM to word the findings, on the control plane only (the advice API, page and
command; never a proxied request): every finding at once, within RUSTA_ADVICE_LLM_BUDGET_MS, each answer kept per
finding for RUSTA_ADVICE_LLM_CACHE_S. The model may propose a draft; metrics.advice.engine checks it like any
other. Outcomes are counted in the cache (shared by the processes when Redis is configured)."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from protocols.ai.config import gateway_ai
from protocols.ai.providers import LlmClient, ProviderError, ProviderSettings
from protocols.block_errors import BlockError
from routes.services import gateway_settings

# One per call: worded (no draft of its own), its draft accepted, refused (not JSON, another route, a draft that
# fails the checks), cut at the budget, failed (the provider's error).
OUTCOMES = ("phrased", "draft_accepted", "refused", "timeout", "error")
MAX_TOKENS = 800
MAX_TEXT = 1000  # characters of the model's text kept
CACHE_PREFIX = "rusta:advice:llm:"
SYSTEM = (
    "You word advice for the operator of Rusta, an API gateway. You get one finding as JSON: the rule that fired, "
    "the route, the figures it read, the route's current values of the fields the advice may change, and the "
    "rule's draft change. Answer with one JSON object and nothing else: {\"route\": the finding's route, "
    "\"text\": one or two plain sentences for the operator naming the route and the figures that matter, "
    "\"draft\": null to keep the rule's draft, or an object of route fields to change instead (only the allowed "
    "fields)}."
)


@dataclass(frozen=True)
class Phrasing:
    """What the model said about one finding: its text, its draft (None: keep the rule's), or why it is not used
    (`refusal`, with the model's text then ignored as well)."""

    text: str | None
    draft: Any = None
    proposed: bool = False  # whether the model proposed a draft (a null draft keeps the rule's)
    refusal: str | None = None


def provider() -> ProviderSettings | None:
    """The gateway-wide `ai` block's LLM with the advice's budget, or None when none is configured (or usable)."""
    try:
        choice = gateway_ai(gateway_settings().ai)
    except BlockError:
        return None
    if choice is None or not choice.model:
        return None
    try:
        configured = choice.settings(os.environ)
    except ValueError:
        return None
    budget = settings.RUSTA_ADVICE_LLM_BUDGET_MS / 1000
    return dataclasses.replace(configured, timeout_s=min(configured.timeout_s, budget), max_tokens=MAX_TOKENS)


def count(outcome: str) -> None:
    key = f"{CACHE_PREFIX}outcome:{outcome}"
    cache.add(key, 0, None)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.add(key, 1, None)


def outcomes() -> dict[str, int]:
    """How the model's answers went since the counters started (OUTCOMES)."""
    found = cache.get_many([f"{CACHE_PREFIX}outcome:{name}" for name in OUTCOMES])
    return {name: int(found.get(f"{CACHE_PREFIX}outcome:{name}", 0)) for name in OUTCOMES}


def _cache_key(finding_id: str, llm: ProviderSettings) -> str:
    return f"{CACHE_PREFIX}{llm.provider}:{llm.model}:{finding_id}"


def cached(finding_id: str, llm: ProviderSettings) -> Phrasing | None:
    found = cache.get(_cache_key(finding_id, llm))
    return Phrasing(**found) if isinstance(found, dict) else None


def remember(finding_id: str, llm: ProviderSettings, phrasing: Phrasing) -> None:
    cache.set(_cache_key(finding_id, llm), dataclasses.asdict(phrasing), settings.RUSTA_ADVICE_LLM_CACHE_S)


def read_answer(text: str, route: str) -> Phrasing:
    """The model's answer as a Phrasing; a refusal when it is not the JSON object asked for or names another
    route (its draft is checked afterwards, by the engine)."""
    body = text.strip()
    if body.startswith("```"):  # a fenced block, as chat models like to answer
        body = body.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(body)
    except ValueError:
        return Phrasing(None, refusal="not JSON: the answer was not a JSON object")
    if not isinstance(data, dict):
        return Phrasing(None, refusal="not JSON: the answer was not a JSON object")
    named = data.get("route")
    if named is not None and named != route:
        return Phrasing(None, refusal=f"wrong route: the answer is about route {named!r}, the finding about "
                                      f"{route!r}")
    words = data.get("text")
    words = words.strip()[:MAX_TEXT] if isinstance(words, str) and words.strip() else None
    return Phrasing(words, data.get("draft"), proposed=data.get("draft") is not None)


def ask_all(llm: ProviderSettings, questions: dict[str, str]) -> dict[str, str | ProviderError | None]:
    """{finding id: the model's text, its ProviderError, or None when the budget ran out first}."""
    return asyncio.run(_ask_all(llm, questions, settings.RUSTA_ADVICE_LLM_BUDGET_MS / 1000))


async def _ask_all(llm: ProviderSettings, questions: dict[str, str],
                   budget_s: float) -> dict[str, str | ProviderError | None]:
    client = LlmClient()
    slots = asyncio.Semaphore(llm.max_concurrency)

    async def one(question: str) -> str:
        async with slots:
            return (await client.chat(llm, SYSTEM, question)).text

    tasks = {key: asyncio.ensure_future(one(question)) for key, question in questions.items()}
    try:
        if tasks:
            await asyncio.wait(tasks.values(), timeout=budget_s)
        answers: dict[str, str | ProviderError | None] = {}
        for key, task in tasks.items():
            if not task.done():
                task.cancel()
                answers[key] = None
            elif isinstance(task.exception(), ProviderError):
                answers[key] = task.exception()  # type: ignore[assignment]
            elif task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            else:
                answers[key] = task.result()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    finally:
        await client.aclose()
    return answers
