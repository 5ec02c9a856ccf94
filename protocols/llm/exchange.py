"""One chat (or embeddings) request through an LLM route: the client's format translated for each target in turn,
the answer (or its stream) translated back, falling back to the next target before the first byte is sent to the
client.

The order of the targets: lower `priority` first; among equals, a weighted random order, or the fastest first token
first on a `latency_aware` route (protocols.llm.health). A target behind an open breaker is passed over, and no
fallback is made past the route's retry budget. A target is passed over,
and the next one asked, when it answers 429 (and is then left alone until its Retry-After has passed, at most 300 s),
5xx, or a context-length error (then only targets with a larger `context_window` are asked), or when it cannot be
reached or does not answer within its `timeout_s`. Any other answer of the provider is the client's, translated:
a 400 the provider gave is the client's mistake. Once a byte of the answer went to the client, a failure ends the
stream with an error event in the client's format, and what was streamed is what is counted.

No I/O but through the data plane's UpstreamClient; no Django. What happened is returned as an Outcome: the target
that answered, every fallback with its reason, the usage (the provider's, or Rusta's count when it reported none or
the stream was cut) and the time to the first token, for the ledger, the metrics and the log.
"""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.errors import UpstreamError
from protocols.llm.formats import embeddings
from protocols.llm.formats.chat import ChatResponse, FormatError, ProviderFormatError, Usage
from protocols.llm.formats.streams import StreamTranslator
from protocols.llm.formats.translate import (
    ClientFormat,
    fill_usage,
    parse_response,
    render_error,
    render_request,
    render_response,
    wire_of,
)
from protocols.llm.health import DEFAULT_RESILIENCE, Resilience, TargetHealth
from protocols.llm.targets import Target
from protocols.upstream import UpstreamClient

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Counter = Callable[[str], int]
CHAT_PATHS: dict[str, bytes] = {"openai": b"/v1/chat/completions", "openai_compatible": b"/v1/chat/completions",
                                "anthropic": b"/v1/messages", "ollama": b"/api/chat"}
MAX_RATE_LIMIT_WAIT_S = 300.0
CONNECT_TIMEOUT_S = 10.0
_JSON = (b"content-type", b"application/json")
_STREAM_HEADERS = {"openai": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
                   "anthropic": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]}


@dataclass
class Fallback:
    """A target passed over, and why: rate_limited, server_error, context_length, timeout, unreachable, format
    (its format cannot carry the request), no_key (its key is not set in this gateway)."""

    target: str
    reason: str


@dataclass
class Outcome:
    """What one chat exchange did: who answered (None when nobody did), the status the client got, the usage to
    count, the fallbacks on the way, the time to the first token (streams) or to the answer, and whether the
    answer was complete (a stream not cut)."""

    status: int = 0
    target: str | None = None
    model: str | None = None
    usage: Usage | None = None
    fallbacks: list[Fallback] = field(default_factory=list)
    first_token_s: float | None = None
    complete: bool = False
    error: str | None = None
    cost_micros: int = 0  # the answer's price (0: unpriced target, or nobody answered)
    answer: ChatResponse | None = None  # a complete chat answer, for the answer cache
    cached: bool = False  # replayed from the answer cache: no provider was asked


class RateLimits:
    """Targets that answered 429, each left alone until its Retry-After has passed (per gateway process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._until: dict[str, float] = {}

    def hold(self, target: str, retry_after: bytes | None) -> None:
        try:
            wait = float(retry_after) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        self._until[target] = self.clock() + min(max(wait, 0.0), MAX_RATE_LIMIT_WAIT_S)

    def waiting(self, target: str) -> bool:
        until = self._until.get(target)
        if until is None:
            return False
        if self.clock() >= until:
            del self._until[target]
            return False
        return True


class Exchange:
    """One chat request of one route: `request` parsed from the client's `client` format, `prompt_tokens` Rusta's
    count of it, `count` the token counter for what is answered."""

    def __init__(self, upstream: UpstreamClient, rate_limits: RateLimits, route_id: int, targets: Sequence[Target],
                 client: ClientFormat, request: Any, prompt_tokens: int, count: Counter,
                 clock: Callable[[], float] = time.perf_counter, health: TargetHealth | None = None,
                 resilience: Resilience = DEFAULT_RESILIENCE) -> None:
        self.upstream = upstream
        self.rate_limits = rate_limits
        self.route_id = route_id
        self.targets = targets
        self.client = client
        self.request = request
        self.prompt_tokens = prompt_tokens
        self.count = count
        self.clock = clock
        self.health = health or TargetHealth()
        self.resilience = resilience
        self.outcome = Outcome()

    async def run(self, send: Send, order: list[int] | None = None) -> Outcome:
        """Ask the targets in turn until one answers, and send its answer (or the last refusal) to the client."""
        outcome = self.outcome
        started = self.clock()
        smaller_than: int | None = None  # after a context-length error: only targets with a larger window
        last: tuple[int, bytes] | None = None
        health, resilience = self.health, self.resilience
        health.admit(self.route_id, resilience.retry)
        asked = False
        if order is None:
            order = health.order(self.route_id, self.targets, resilience.latency_aware)
        for index in order:
            target = self.targets[index]
            if self.rate_limits.waiting(target.name):
                outcome.fallbacks.append(Fallback(target.name, "rate_limited"))
                continue
            if target.missing_key:  # its key's variable is unset in this gateway: never called without it
                outcome.fallbacks.append(Fallback(target.name, "no_key"))
                continue
            if smaller_than is not None and (target.context_window or 0) <= smaller_than:
                continue
            if not self._serves(target):
                continue
            breaker = health.breaker(self.route_id, target.name, resilience.breaker)
            if not breaker.available(health.clock()):
                outcome.fallbacks.append(Fallback(target.name, "breaker_open"))
                continue
            if asked and not health.may_fall_back(self.route_id, resilience.retry):
                outcome.fallbacks.append(Fallback(target.name, "budget"))  # the route's fallback budget is spent
                break
            try:
                body = self._render(target)
            except FormatError as exc:  # this target's format cannot carry the request; another's may
                last = (400, json.dumps(render_error(self.client, 400, exc.message, param=exc.param)).encode())
                outcome.fallbacks.append(Fallback(target.name, "format"))
                continue
            asked = True
            trial = breaker.acquire()
            asked_at = self.clock()
            try:
                response = await self._send(target, index, body)
            except UpstreamError as exc:
                breaker.record(True, trial, health.clock())
                outcome.fallbacks.append(Fallback(target.name, "timeout" if exc.status == 504 else "unreachable"))
                last = (exc.status, self._error(exc.status, f"The model provider {target.name} could not be "
                                                            f"reached: {exc.message}"))
                continue
            status = response.status
            # A 5xx is the target's failure; a 429 says nothing of its health (it is held, below).
            breaker.record(True if status >= 500 else None if status == 429 else False, trial, health.clock())
            payload = await _read_all(response) if status >= 400 else b""
            if status == 429 or status >= 500 or (status in (400, 413) and _context_length(payload)):
                reason = "rate_limited" if status == 429 else "server_error" if status >= 500 else "context_length"
                if status == 429:
                    self.rate_limits.hold(target.name, _header(response.headers, b"retry-after"))
                if reason == "context_length":
                    smaller_than = max(target.context_window or 0, smaller_than or 0)
                outcome.fallbacks.append(Fallback(target.name, reason))
                last = (status, self._translated_error(target, status, payload))
                continue
            outcome.target, outcome.model = target.name, target.model
            if status >= 400:  # the provider refused what the client asked: the client's to see, in its format
                await _answer(send, status, self._translated_error(target, status, payload))
                outcome.status, outcome.error, outcome.complete = status, "provider_refused", True
                return outcome
            await self._deliver(target, response, send, started)
            if outcome.first_token_s is not None and outcome.complete:  # this target's own time, not the fallbacks'
                health.first_token(self.route_id, target.name, outcome.first_token_s - (asked_at - started))
            return outcome
        # Every target passed over: the client gets the last refusal (429 when all are rate-limited, 400 when the
        # prompt fits none, else the last failure), or 503 when none could even be asked.
        status, payload = last if last is not None else (503, self._error(503, "No model provider of this route "
                                                                                  "can take the request now."))
        outcome.status, outcome.error = status, "no_target"
        await _answer(send, status, payload)
        return outcome

    # --- What a front door changes: which targets, the provider's body and path, and the answer ---------------

    def _serves(self, target: Target) -> bool:
        return True  # every provider kind chats

    def _render(self, target: Target) -> dict[str, Any]:
        return render_request(self.request, target.provider, target.model)

    def _path(self, target: Target) -> bytes:
        return CHAT_PATHS[target.provider]

    async def _deliver(self, target: Target, response: Any, send: Send, started: float) -> None:
        if self.request.stream:
            await self._stream(target, response, send, started)
        else:
            await self._whole(target, response, send, started)

    async def _send(self, target: Target, index: int, body: dict[str, Any]) -> Any:
        spec = target.backend_spec(self.route_id, index)
        pool = self.upstream.pool(spec)
        data = json.dumps(body).encode()
        name = f"[{spec.host}]" if ":" in spec.host else spec.host
        host = name if spec.port in (80, 443) else f"{name}:{spec.port}"
        headers = [(b"host", host.encode()), _JSON, (b"accept", b"application/json, text/event-stream"),
                   *target.auth_headers()]
        path = target.path_prefix + self._path(target)
        return await self.upstream.request(pool, b"POST", path, headers, data, connect_timeout=CONNECT_TIMEOUT_S,
                                           read_timeout=target.timeout_s)

    async def _whole(self, target: Target, response: Any, send: Send, started: float) -> None:
        payload = await _read_all(response)
        outcome = self.outcome
        outcome.first_token_s = self.clock() - started
        try:
            answer = parse_response(target.provider, json.loads(payload))
        except (ValueError, ProviderFormatError) as exc:
            outcome.status, outcome.error = 502, "bad_answer"
            await _answer(send, 502, self._error(502, f"The model provider {target.name} sent an answer Rusta "
                                                      f"cannot read: {exc}"))
            return
        if answer.usage.estimated or not (answer.usage.input_tokens or answer.usage.output_tokens):
            answer.usage.estimated = True  # reported nothing: counted by Rusta, never recorded as free
            fill_usage(answer, self.prompt_tokens, self.count)
        outcome.usage, outcome.complete, outcome.status, outcome.answer = answer.usage, True, 200, answer
        await _answer(send, 200, json.dumps(render_response(self.client, answer)).encode())

    async def _stream(self, target: Target, response: Any, send: Send, started: float) -> None:
        outcome = self.outcome
        translator = StreamTranslator(wire_of(target.provider), self.client, model=target.model,
                                      prompt_tokens=self.prompt_tokens, count=self.count,
                                      include_usage=self.request.include_usage)
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS[self.client]})
        outcome.status = 200
        try:
            async for chunk in response:
                out = translator.feed(chunk)
                if outcome.first_token_s is None and translator.started_answer:
                    outcome.first_token_s = self.clock() - started  # the first text or tool call, not the preamble
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            tail = translator.end()
        except (TimeoutError, UpstreamError) as exc:
            tail = translator.error_bytes(f"The model provider {target.name} stopped answering: {exc}")
            outcome.error = "stream_cut"
        if not translator.complete and outcome.error is None:
            tail += translator.error_bytes(f"The model provider {target.name} ended the answer early.")
            outcome.error = "stream_cut"
        outcome.usage, outcome.complete = translator.usage, translator.complete
        if translator.complete:
            outcome.answer = translator.response()
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    def _error(self, status: int, message: str) -> bytes:
        return json.dumps(render_error(self.client, status, message)).encode()

    def _translated_error(self, target: Target, status: int, payload: bytes) -> bytes:
        """A provider's error body in the client's format, its message kept (it names what the provider refused)."""
        return self._error(status, f"{target.name}: {_provider_message(payload)}")


def _context_length(payload: bytes) -> bool:
    """Whether a provider's 400 says the prompt does not fit the model (OpenAI's code, Anthropic's and Ollama's
    words)."""
    text = payload.decode("utf-8", "replace").lower()
    return "context_length_exceeded" in text or "prompt is too long" in text or "maximum context length" in text


async def _read_all(response: Any) -> bytes:
    if response.complete:
        return response.body()  # type: ignore[no-any-return]
    return b"".join([chunk async for chunk in response])


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _provider_message(payload: bytes) -> str:
    """The message of a provider's error body (OpenAI's, Anthropic's or Ollama's shape), else its first bytes."""
    try:
        body = json.loads(payload)
    except ValueError:
        return payload[:200].decode("utf-8", "replace") or "no message"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return payload[:200].decode("utf-8", "replace")


async def _answer(send: Send, status: int, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class EmbeddingsExchange(Exchange):
    """OpenAI's /v1/embeddings door: the same fallback among the targets that have an embeddings API (not
    Anthropic's), the answer in the encoding the client asked for; `request` is an EmbeddingsRequest."""

    def _serves(self, target: Target) -> bool:
        return embeddings.can_serve(target.provider, "embeddings")

    def _render(self, target: Target) -> dict[str, Any]:
        return embeddings.render_request(self.request, target.provider, target.model)

    def _path(self, target: Target) -> bytes:
        return embeddings.EMBEDDINGS_PATHS[target.provider]

    async def _deliver(self, target: Target, response: Any, send: Send, started: float) -> None:
        payload = await _read_all(response)
        outcome = self.outcome
        outcome.first_token_s = self.clock() - started
        try:
            answer = embeddings.parse_response(target.provider, json.loads(payload))
        except (ValueError, ProviderFormatError) as exc:
            outcome.status, outcome.error = 502, "bad_answer"
            await _answer(send, 502, self._error(502, f"The model provider {target.name} sent an answer Rusta "
                                                      f"cannot read: {exc}"))
            return
        outcome.usage = embeddings.fill_usage(answer, self.prompt_tokens)
        outcome.complete, outcome.status = True, 200
        rendered = embeddings.render_response(answer, self.request.encoding_format)
        await _answer(send, 200, json.dumps(rendered).encode())
