"""The front doors of an LLM route: OpenAI's `/v1/chat/completions`, `/v1/embeddings` and `/v1/models` and Anthropic's
`/v1/messages` and `/v1/models` under the route's path, each reaching the route's targets whatever their provider
(protocols.llm.exchange does the asking; the model lists are written from the route's own targets).

`LlmGateway.serve` takes one request the proxy matched to an LLM route: it finds the front door from the path below
the route's own, reads the body (at most the policy's `max_body_bytes`), parses it in the door's format (a mistake is
a 400 in that format, so the client's SDK raises its usual error), counts the prompt, and runs the exchange. One
gateway per data plane: it holds the upstream client, the targets' rate-limit holds and the token counters.
"""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from protocols.llm.answers import AnswerStore, MemoryAnswers, answer_key, decode, encode
from protocols.llm.budgets import Budgets, LocalBudgetStore, Subject
from protocols.llm.config import LlmPolicy
from protocols.llm.exchange import EmbeddingsExchange, Exchange, Outcome, RateLimits, Send
from protocols.llm.formats import embeddings, models
from protocols.llm.formats.chat import (
    DEFAULT_ANTHROPIC_MAX_TOKENS,
    ChatRequest,
    ChatResponse,
    FormatError,
    Part,
    TextPart,
)
from protocols.llm.formats.streams import replay
from protocols.llm.formats.translate import ClientFormat, parse_request, render_error, render_response
from protocols.llm.guard import Verdict
from protocols.llm.health import DEFAULT_RESILIENCE, Resilience, TargetHealth
from protocols.llm.metrics import METRICS, LlmMetrics
from protocols.llm.targets import Target
from protocols.llm.tokens import counter_for
from protocols.upstream import UpstreamClient

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
# The front doors, by the path below the route's (`/llm` + `/v1/chat/completions`).
CHAT_DOORS: dict[str, ClientFormat] = {"/v1/chat/completions": "openai", "/chat/completions": "openai",
                                       "/v1/messages": "anthropic", "/messages": "anthropic"}
EMBEDDING_DOORS = frozenset({"/v1/embeddings", "/embeddings"})
MODEL_DOORS = ("/v1/models", "/models")
_MODEL_PREFIXES = tuple(f"{door}/" for door in MODEL_DOORS)  # /v1/models/{id}


class BodyTooLarge(Exception):
    """The request body passed the route's limit."""


class LlmGateway:
    """The data plane's LLM front doors (one per process): the upstream client, the targets' rate-limit holds and
    the token limits and budgets (`budgets`: shared through Redis when the gateway has REDIS_URL)."""

    def __init__(self, upstream: UpstreamClient, budgets: Budgets | None = None,
                 metrics: LlmMetrics = METRICS, answers: AnswerStore | None = None) -> None:
        self.upstream = upstream
        self.rate_limits = RateLimits()
        self.budgets = budgets or Budgets(LocalBudgetStore())
        self.metrics = metrics
        self.answers: AnswerStore = answers or MemoryAnswers()
        self.health = TargetHealth()

    async def aclose(self) -> None:
        """Close the budgets' Redis connection, if it has one (the upstream client is the data plane's)."""
        close = getattr(self.budgets.store, "aclose", None)
        if close is not None:
            await close()
        await self.answers.aclose()

    @staticmethod
    def door(subpath: str) -> ClientFormat | None:
        """The client format of the front door at `subpath` (the path below the route's), None for no door."""
        return CHAT_DOORS.get(subpath.rstrip("/") or "/")

    async def serve(self, route_id: int, route: str, policy: LlmPolicy, subpath: str, method: str,
                    receive: Receive, send: Send, *, consumer: str | None = None,
                    headers: Sequence[tuple[bytes, bytes]] = (), query: bytes = b"",
                    resilience: Resilience = DEFAULT_RESILIENCE, order: list[int] | None = None) -> Outcome:
        """Answer one request of an LLM route; the Outcome says what it cost and who answered. Every request is
        counted (protocols.llm.metrics), refusals included."""
        started = time.perf_counter()
        streamed = [False]
        door = subpath.rstrip("/") or "/"
        if door in MODEL_DOORS or door.startswith(_MODEL_PREFIXES):
            return await self._models(policy, door, method, send, headers, query)
        outcome = await self._serve(route_id, route, policy, subpath, method, receive, send, consumer, order,
                                    streamed, resilience)
        self.metrics.record(route, consumer, outcome, time.perf_counter() - started, streamed=streamed[0])
        return outcome

    async def _models(self, policy: LlmPolicy, door: str, method: str, send: Send,
                      headers: Sequence[tuple[bytes, bytes]], query: bytes) -> Outcome:
        """GET /v1/models[/{id}]: the route's models, in Anthropic's list shape for a client that sends
        `anthropic-version` (its SDK always does), else OpenAI's; no provider is asked."""
        client: ClientFormat = "anthropic" if any(name.lower() == b"anthropic-version" for name, _ in headers) \
            else "openai"
        if method not in ("GET", "HEAD"):
            return await refuse(send, client, 405, f"{door} takes GET.", "invalid_request_error")
        entries = [(target.model, target.provider) for target in policy.targets]
        model_id = door.split("/models", 1)[1].lstrip("/")
        try:
            if model_id:
                body = (models.render_anthropic_model(entries, model_id) if client == "anthropic"
                        else models.render_openai_model(entries, model_id))
                if body is None:
                    return await refuse(send, client, 404, f"This route has no model {model_id!r}.",
                                        "not_found_error")
            elif client == "anthropic":
                page = models.parse_anthropic_page(dict(parse_qsl(query.decode("latin-1"))))
                body = models.render_anthropic_list(entries, page)
            else:
                body = models.render_openai_list(entries)
        except FormatError as exc:
            return await refuse(send, client, 400, exc.message, "invalid_request_error", exc.param)
        await _json(send, 200, body)
        return Outcome(status=200, complete=True)

    async def _serve(self, route_id: int, route: str, policy: LlmPolicy, subpath: str, method: str,
                     receive: Receive, send: Send, consumer: str | None, order: list[int] | None,
                     streamed: list[bool], resilience: Resilience) -> Outcome:
        embedding = (subpath.rstrip("/") or "/") in EMBEDDING_DOORS
        client = "openai" if embedding else self.door(subpath)
        if client is None:
            return await refuse(send, "openai", 404, f"No LLM front door at {subpath}: use /v1/chat/completions, "
                                                      "/v1/messages, /v1/embeddings or /v1/models.",
                                "not_found_error")
        if method != "POST":
            return await refuse(send, client, 405, f"{subpath} takes POST.", "invalid_request_error")
        try:
            body = json.loads(await _read_body(receive, policy.max_body_bytes))
        except BodyTooLarge:
            return await refuse(send, client, 413, f"The request body is larger than {policy.max_body_bytes} "
                                                   "bytes.", "request_too_large")
        except ValueError:
            return await refuse(send, client, 400, "The request body is not JSON.", "invalid_request_error")
        if not isinstance(body, dict):
            return await refuse(send, client, 400, "The request body must be a JSON object.",
                                "invalid_request_error")
        try:
            request: Any = embeddings.parse_request(body) if embedding else parse_request(client, body)
        except FormatError as exc:
            return await refuse(send, client, 400, exc.message, "invalid_request_error", exc.param)
        streamed[0] = not embedding and request.stream
        counter = counter_for(request.model)
        prompt_tokens = request.prompt_tokens(counter.count) if embedding else counter.count_request(request)
        if policy.guard is not None:
            verdict = policy.guard.check(request.role_texts())
            if verdict.refused or (verdict := _tokens_verdict(policy, prompt_tokens, verdict)).refused:
                return await refuse(send, client, verdict.status, verdict.message, "invalid_request_error",
                                    verdict.rule)
            if verdict.outcome == "masked":
                if embedding:
                    request.texts = list(verdict.texts)
                else:
                    _apply_masks(request, verdict.texts)
        key = None
        if policy.cache is not None and not embedding:
            key = answer_key(route, consumer, client, body)
            stored = await self.answers.get(key)
            cached = decode(stored) if stored is not None else None
            if cached is not None:
                return await _replay(cached, client, request, send)
        targets = policy.targets
        # An embedding answers no tokens; a chat answer at most its max_tokens (Anthropic's default when unset).
        answer_tokens = 0 if embedding else request.max_tokens or DEFAULT_ANTHROPIC_MAX_TOKENS
        reservation = None
        if policy.budgets is not None:
            admission = await self.budgets.reserve(
                [policy.budgets], Subject(consumer, route, request.model),
                tokens=prompt_tokens + answer_tokens,
                cost=max((target.prices.max_cost(prompt_tokens, answer_tokens)
                          for target in targets if target.prices is not None), default=0))
            if not admission.allowed:
                refusal = admission.error()
                outcome = await refuse(send, client, refusal.status, refusal.message, refusal.type,
                                       headers=refusal.headers)
                return outcome
            reservation = admission.reservation
        kind = EmbeddingsExchange if embedding else Exchange
        exchange = kind(self.upstream, self.rate_limits, route_id, targets, client, request, prompt_tokens,
                        counter.count, health=self.health, resilience=resilience)
        if order is None:
            order = self.health.order(route_id, targets, resilience.latency_aware)
        try:
            outcome = await exchange.run(send, order)
        finally:
            outcome = exchange.outcome
            outcome.cost_micros = _cost(outcome, targets)
            if reservation is not None:
                await self._settle(reservation, outcome)
        if key is not None and policy.cache is not None and outcome.status == 200 and outcome.answer is not None:
            data = encode(outcome.answer)  # complete answers only: Exchange sets `answer` for those
            if len(data) <= policy.cache.max_body_bytes:
                await self.answers.set(key, data, policy.cache)
        return outcome

    async def _settle(self, reservation: Any, outcome: Outcome) -> None:
        """Replace what was reserved by what the answer used (nothing when no target answered)."""
        usage = outcome.usage
        if usage is None:
            await self.budgets.release(reservation)
            return
        await self.budgets.settle(reservation, tokens=usage.total_tokens, cost=outcome.cost_micros)


async def _replay(answer: ChatResponse, client: ClientFormat, request: ChatRequest, send: Send) -> Outcome:
    """A cached answer, as a stream when the request streams; no provider is asked, nothing is spent."""
    if request.stream:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        await send({"type": "http.response.body", "body": replay(answer, client, include_usage=request.include_usage),
                    "more_body": False})
    else:
        await _json(send, 200, render_response(client, answer))
    return Outcome(status=200, model=answer.model, complete=True, cached=True)


def _cost(outcome: Outcome, targets: Sequence[Target]) -> int:
    """The answer's usage priced at the target that answered (0 when it is unpriced or nobody answered)."""
    usage = outcome.usage
    prices = next((target.prices for target in targets if target.name == outcome.target), None)
    if usage is None or prices is None:
        return 0
    return prices.cost(usage.uncached_input_tokens + usage.cache_write_tokens, usage.output_tokens,
                       usage.cached_input_tokens)


def _tokens_verdict(policy: LlmPolicy, prompt_tokens: int, verdict: Verdict) -> Verdict:
    """The guard's prompt-token cap over Rusta's count of the prompt, once its patterns let it through."""
    assert policy.guard is not None
    capped = policy.guard.check_tokens(prompt_tokens)
    return capped if capped.refused else verdict


def _apply_masks(request: ChatRequest, texts: Sequence[str]) -> None:
    """Write the guard's masked texts back: a message whose text changed keeps its other parts (images) and
    gets its text as one part where its first text part was."""
    for message, text in zip(request.messages, texts, strict=False):
        if message.text() == text:
            continue
        parts: list[Part] = []
        placed = False
        for part in message.content:
            if isinstance(part, TextPart):
                if not placed:
                    parts.append(TextPart(text, part.extra))
                    placed = True
            else:
                parts.append(part)
        message.content = parts


async def _read_body(receive: Receive, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ValueError("the client left")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def refuse(send: Send, client: ClientFormat, status: int, message: str, type: str, param: str | None = None,
                 headers: Sequence[tuple[bytes, bytes]] = ()) -> Outcome:
    """Answer in the front door's own error format (so the client's SDK raises its usual error)."""
    await _json(send, status, render_error(client, status, message, type=type, param=param), headers)
    return Outcome(status=status, error=type)


async def _json(send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
