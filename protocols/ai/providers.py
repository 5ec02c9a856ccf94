"""Clients for the LLM providers that content-based routing asks: settings, one error type, one pooled client."""
from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from protocols.errors import (
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamInvalidResponse,
    UpstreamRefused,
    UpstreamReset,
    UpstreamTimeout,
)
from protocols.table import BackendSpec
from protocols.upstream import UpstreamClient, UpstreamResponse

# The wire formats Rusta speaks, and where each is served unless the settings say otherwise.
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "ollama": "http://127.0.0.1:11434",
}
WIRES = (*DEFAULT_BASE_URLS, "openai_compatible")
# The earlier gateway's other names: OpenAI-compatible services, each at the base its own docs give for the OpenAI
# SDK, less the "/v1" that Rusta adds. (Perplexity is refused below: its documented path has no /v1.)
COMPATIBLE_BASE_URLS = {
    "groq": "https://api.groq.com/openai",
    "mistral": "https://api.mistral.ai",
    "xai": "https://api.x.ai",
}
REFUSED_PROVIDERS = {
    "cohere": "provider 'cohere' is not supported: use 'openai_compatible' with Cohere's compatibility endpoint "
              "(base_url https://api.cohere.ai/compatibility)",
    "perplexity": "provider 'perplexity' is not supported: its chat API has no /v1 in its path; use "
                  "'openai_compatible' with a base_url that serves /v1/chat/completions (LiteLLM in front of it)",
}
ENV_KEYS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "xai": "XAI_API_KEY",
}
_PATHS = {
    "openai": b"/v1/chat/completions",
    "openai_compatible": b"/v1/chat/completions",
    "anthropic": b"/v1/messages",
    "ollama": b"/api/chat",
}
ANTHROPIC_VERSION = b"2023-06-01"
# Anthropic requires a cap; the routing answer is a few tokens of JSON. (OpenAI's reasoning models spend their cap
# on thinking and answer nothing when it is low, so the OpenAI wire sends none.)
ANSWER_MAX_TOKENS = 64
# An answer larger than this is not a routing choice; reading stops there.
MAX_ANSWER_BYTES = 1 << 20

# The longest Retry-After honoured: a provider asking for more is asked again after this.
MAX_REST_S = 300.0
# ProviderError.kind, the operator's view of a failed call (and the "outcome" of stats() besides "ok").
KINDS = ("auth", "rate_limited", "server", "timeout", "bad_answer", "refused", "unreachable", "busy")


def resolve_provider(name: str, base_url: str = "") -> tuple[str, str]:
    """(wire format, base URL without a trailing slash) for a configured provider name; ValueError says why not.

    The base URL is where the wire's own path ("/v1/chat/completions", "/v1/messages", "/api/chat") is appended.
    """
    if name in REFUSED_PROVIDERS:
        raise ValueError(REFUSED_PROVIDERS[name])
    if name in DEFAULT_BASE_URLS:
        wire, default = name, DEFAULT_BASE_URLS[name]
    elif name in COMPATIBLE_BASE_URLS:
        wire, default = "openai_compatible", COMPATIBLE_BASE_URLS[name]
    elif name == "openai_compatible":
        if not base_url:
            raise ValueError("provider 'openai_compatible' needs a base_url (such as http://127.0.0.1:8000)")
        wire, default = name, ""
    else:
        known = ", ".join(sorted((*WIRES, *COMPATIBLE_BASE_URLS)))
        raise ValueError(f"unknown provider {name!r}; known providers: {known}")
    return wire, _checked_base_url(base_url or default)


def _checked_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url {url!r} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not carry credentials; give the key as api_key")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url {url!r} must have no query or fragment")
    try:
        if parts.port == 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"base_url {url!r} has an invalid port") from None
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        raise ValueError(f"base_url {url!r} ends with /v1: give it without, Rusta adds the provider's own path")
    return f"{parts.scheme}://{parts.netloc}{path}"


def api_key_from_env(provider: str, environ: Mapping[str, str]) -> str:
    """The key in the provider's usual environment variable (OPENAI_API_KEY...), or "" when it has none."""
    variable = ENV_KEYS.get(provider)
    return environ.get(variable, "").strip() if variable else ""


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Which provider and model to ask, with what key, within what time and how many calls at once.

    Everything a call needs besides the prompt (wire format, backend, target, header bytes) is computed here,
    once. The key never appears in repr() nor in any error.
    """

    provider: str
    model: str
    api_key: str = field(default="", repr=False)
    base_url: str = ""  # "": the provider's default
    timeout_s: float = 10.0
    max_concurrency: int = 8
    max_tokens: int = ANSWER_MAX_TOKENS  # the answer's cap where the wire has one (Anthropic's)
    wire: str = field(init=False)
    backend: BackendSpec = field(init=False, repr=False)
    target: bytes = field(init=False, repr=False)
    headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        wire, base_url = resolve_provider(self.provider, self.base_url)
        if not self.model:
            raise ValueError(f"provider {self.provider!r} needs a model")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be above 0, not {self.timeout_s!r}")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {self.max_concurrency!r}")
        if not self.api_key and self.provider in ENV_KEYS:
            raise ValueError(f"provider {self.provider!r} needs an API key: set api_key or {ENV_KEYS[self.provider]}")
        parts = urlsplit(base_url)
        assert parts.hostname is not None
        backend = BackendSpec(id=0, scheme=parts.scheme, host=parts.hostname,
                              port=parts.port or (443 if parts.scheme == "https" else 80))
        key = self.api_key.encode()
        headers = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
        if wire == "anthropic":
            headers += [(b"x-api-key", key), (b"anthropic-version", ANTHROPIC_VERSION)]
        elif key:
            headers.append((b"authorization", b"Bearer " + key))
        object.__setattr__(self, "base_url", base_url)
        object.__setattr__(self, "wire", wire)
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "target", parts.path.encode() + _PATHS[wire])
        object.__setattr__(self, "headers", tuple(headers))

    @classmethod
    def build(cls, provider: str, model: str, *, environ: Mapping[str, str] = os.environ, api_key: str = "",
              base_url: str = "", timeout_s: float = 10.0, max_concurrency: int = 8) -> ProviderSettings:
        """Settings whose key, when not given, is read now from the provider's environment variable."""
        return cls(provider, model, api_key or api_key_from_env(provider, environ), base_url, timeout_s,
                   max_concurrency)

    @property
    def slot(self) -> tuple[str, str]:
        """What max_concurrency counts calls in flight by: one provider at one base URL."""
        return self.wire, self.base_url


class ProviderError(Exception):
    """A provider call that gave no usable answer; `kind` is one of KINDS, `message` names the provider.

    `status` is the provider's HTTP status when it answered; `retry_after` the seconds it asked us to wait (429).
    """

    def __init__(self, kind: str, provider: str, detail: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.kind = kind
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.message = f"LLM provider {provider}: {detail}"
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """The model's text and what it cost in tokens."""

    text: str
    input_tokens: int
    output_tokens: int
    provider: str
    model: str


def _request_body(settings: ProviderSettings, system: str, user: str) -> bytes:
    if settings.wire == "anthropic":
        body: dict[str, Any] = {
            "model": settings.model, "max_tokens": settings.max_tokens, "temperature": 0, "system": system,
            "messages": [{"role": "user", "content": user}],
        }
    else:
        body = {"model": settings.model,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        if settings.wire == "ollama":
            body["stream"] = False
            body["options"] = {"temperature": 0}
    return json.dumps(body).encode()


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _answer(wire: str, data: Any) -> tuple[str, int, int]:
    """(text, input tokens, output tokens) from a provider's JSON answer; text is "" when there is none."""
    if not isinstance(data, dict):
        return "", 0, 0
    text: Any = ""
    found = data.get("usage")
    usage: dict[str, Any] = found if isinstance(found, dict) else {}
    if wire == "anthropic":
        blocks = data.get("content")
        if isinstance(blocks, list):
            # Thinking or tool blocks may come first; the answer is the first text block.
            text = next((b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"), "")
        return (text if isinstance(text, str) else ""), _count(usage.get("input_tokens")), \
            _count(usage.get("output_tokens"))
    if wire == "ollama":
        message = data.get("message")
        text = message.get("content") if isinstance(message, dict) else ""
        return (text if isinstance(text, str) else ""), _count(data.get("prompt_eval_count")), \
            _count(data.get("eval_count"))
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        text = message.get("content") if isinstance(message, dict) else ""  # null when the model refused
    return (text if isinstance(text, str) else ""), _count(usage.get("prompt_tokens")), \
        _count(usage.get("completion_tokens"))


def retry_after_seconds(value: bytes | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if unreadable."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


class LlmClient:
    """Calls to LLM providers over the data plane's pooled HTTP/1.1 client; one per process.

    `upstream` is the proxy's own UpstreamClient (connections to a provider are kept alive and reused like those
    to any backend); `clock` reads wall time for Retry-After dates. After a 429 with Retry-After, calls to that
    provider fail at once as rate_limited until the time is up (at most MAX_REST_S). Counters are plain ints.
    """

    def __init__(self, upstream: UpstreamClient | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.upstream = upstream if upstream is not None else UpstreamClient()
        self._owns_upstream = upstream is None
        self.clock = clock
        self._in_flight: dict[tuple[str, str], int] = {}
        # A provider that answered 429 is not called again before its Retry-After (clock time), per slot.
        self._resting_until: dict[tuple[str, str], float] = {}
        self._stats: dict[tuple[str, str], dict[str, int]] = {}

    def stats(self) -> dict[tuple[str, str], dict[str, int]]:
        """{(provider, outcome): {"calls", "input_tokens", "output_tokens"}}; outcome is "ok" or an error kind."""
        return {key: dict(counts) for key, counts in self._stats.items()}

    async def chat(self, settings: ProviderSettings, system: str, user: str) -> ChatResult:
        """Ask the model; the answer's text with its token counts, or ProviderError (never anything else)."""
        slot = settings.slot
        resting = self._resting_until.get(slot)
        if resting is not None:
            if self.clock() < resting:
                self._tally(settings.provider, "rate_limited")
                raise ProviderError("rate_limited", settings.provider,
                                    f"waiting out its Retry-After ({resting - self.clock():.1f} s left)")
            del self._resting_until[slot]
        in_flight = self._in_flight.get(slot, 0)
        if in_flight >= settings.max_concurrency:
            # Fail fast: a routing decision that waits for a free slot only adds latency to the request.
            self._tally(settings.provider, "busy")
            raise ProviderError("busy", settings.provider,
                                f"{settings.max_concurrency} calls already in flight to {settings.base_url}")
        self._in_flight[slot] = in_flight + 1
        try:
            result = await self._call(settings, _request_body(settings, system, user))
        except ProviderError as exc:
            self._tally(settings.provider, exc.kind)
            if exc.kind == "rate_limited" and exc.retry_after:
                self._resting_until[slot] = self.clock() + min(exc.retry_after, MAX_REST_S)
            raise
        finally:
            self._in_flight[slot] -= 1
        self._tally(settings.provider, "ok", result.input_tokens, result.output_tokens)
        return result

    def _tally(self, provider: str, outcome: str, input_tokens: int = 0, output_tokens: int = 0) -> None:
        counts = self._stats.get((provider, outcome))
        if counts is None:
            counts = self._stats[(provider, outcome)] = {"calls": 0, "input_tokens": 0, "output_tokens": 0}
        counts["calls"] += 1
        counts["input_tokens"] += input_tokens
        counts["output_tokens"] += output_tokens

    async def aclose(self) -> None:
        """Close idle connections when this client made its own UpstreamClient (else that client's owner does)."""
        if self._owns_upstream:
            await self.upstream.aclose()

    async def _call(self, settings: ProviderSettings, body: bytes) -> ChatResult:
        provider = settings.provider
        try:
            async with asyncio.timeout(settings.timeout_s):
                status, headers, payload = await self._exchange(settings, body)
        except TimeoutError:
            raise ProviderError("timeout", provider, f"no answer within {settings.timeout_s:g} s") from None
        except UpstreamError as exc:
            raise _converted(provider, exc) from None
        if status in (401, 403):
            raise ProviderError("auth", provider, f"the API key was refused ({status})", status)
        if status == 429:
            retry_after = retry_after_seconds(headers.get(b"retry-after"), self.clock())
            raise ProviderError("rate_limited", provider, "rate limited (429)", status, retry_after)
        if status >= 500:
            raise ProviderError("server", provider, f"server error ({status})", status)
        if not 200 <= status < 300:
            raise ProviderError("refused", provider, f"the request was refused ({status})", status)
        try:
            data = json.loads(payload)
        except ValueError:
            raise ProviderError("bad_answer", provider, "the answer is not JSON", status) from None
        text, input_tokens, output_tokens = _answer(settings.wire, data)
        if not text.strip():
            raise ProviderError("bad_answer", provider, "the answer has no text", status)
        return ChatResult(text, input_tokens, output_tokens, provider, settings.model)

    async def _exchange(self, settings: ProviderSettings, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        upstream = self.upstream
        pool = upstream.pool(settings.backend)
        headers = [(b"host", pool.host_header), *settings.headers]
        timeout = settings.timeout_s  # asyncio.timeout above bounds the whole call; these only bound each wait
        reused = bool(pool.idle)
        try:
            response = await upstream.request(pool, b"POST", settings.target, headers, body,
                                              connect_timeout=timeout, read_timeout=timeout)
        except UpstreamReset:
            if not reused:
                raise
            # The stale keep-alive race: the provider closed the idle connection as we reused it. The client
            # retries only bodiless requests; asking a model again is safe, so go once more on a new connection.
            response = await upstream.request(pool, b"POST", settings.target, headers, body,
                                              connect_timeout=timeout, read_timeout=timeout)
        return response.status, dict(response.headers), await _read(response, settings.provider)


async def _read(response: UpstreamResponse, provider: str) -> bytes:
    if response.complete:
        data = response.body()
        if len(data) > MAX_ANSWER_BYTES:
            raise ProviderError("bad_answer", provider, f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        return data
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response:
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ProviderError("bad_answer", provider, f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
            chunks.append(chunk)
    finally:
        response.close()  # a no-op once the body was read to the end
    return b"".join(chunks)


def _converted(provider: str, exc: UpstreamError) -> ProviderError:
    """The upstream client's errors, said once in the provider's terms."""
    if isinstance(exc, UpstreamRefused):  # refused, unreachable, name not resolved, TLS handshake failed
        return ProviderError("unreachable", provider, exc.message)
    if isinstance(exc, (UpstreamConnectTimeout, UpstreamTimeout)):
        return ProviderError("timeout", provider, exc.message)
    if isinstance(exc, UpstreamInvalidResponse):
        return ProviderError("bad_answer", provider, exc.message)
    return ProviderError("server", provider, exc.message)  # reset mid-exchange and the like
