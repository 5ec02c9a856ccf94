"""`content_analysis`: an LLM chooses a request's backend from its content, and a local model per route learns
its choices, so that once confident the gateway decides in well under a millisecond and asks the LLM only when not.

One request's answer, first found wins: the decision cache (keyed by a signature of what the LLM would see: route,
method, path template, the redacted body excerpt and the backends; entries live `cache_ttl_s`); the route's local
model, when its confidence reaches `confidence`; the LLM. With `learn="sync"` the request waits for the LLM (run
it through `decide_within`, which bounds the wait by `budget_s`); with `learn="async"` it gets no opinion at once
(the caller falls back) while the LLM labels it in the background for the next time. Either way the LLM's answer
teaches the local model and fills the cache, even when it comes after the request stopped waiting. A share
`sample_rate` of the model's confident answers is also sent to the LLM in the background: that measures their
agreement (DecisionLog.agreement) and lets the model follow the LLM when its rule changes.

`fallbacks` are other providers, asked in turn when the one before fails (its error is counted either way).

Background labels are bounded (`max_background` at once; beyond it a label is skipped, not queued) and never
awaited by a request they were not started for; `aclose()` cancels them.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Literal

from protocols.ai.classifier import OnlineClassifier, SparseVector, TextFeatures
from protocols.ai.decide import BackendView, Decision, RoutingRequest
from protocols.ai.prompt import body_excerpt, parse_choice, routing_prompt
from protocols.ai.providers import LlmClient, ProviderError, ProviderSettings
from protocols.ai.records import DecisionLog

Learn = Literal["sync", "async"]
DEFAULT_CONFIDENCE = 0.8
DEFAULT_SAMPLE_RATE = 0.02
MAX_BACKGROUND = 4
MAX_CACHE_ENTRIES = 10_000
# Fallback reasons: fixed phrases, so that DecisionLog.fallbacks counts them under a small set of keys.
LABELLING = "llm labelling in background"
LABELLERS_BUSY = "llm labellers busy"
UNREADABLE = "llm answer unreadable"


@dataclass(slots=True)
class _RouteModel:
    """A route's local model, valid for the backends it was trained on (their order gives the labels)."""

    backends: tuple[BackendView, ...]
    classifier: OnlineClassifier


class ContentAnalysis:
    """The `content_analysis` strategy (see the module docstring); one per process, shared by all routes."""

    def __init__(self, client: LlmClient, settings: ProviderSettings, *, budget_s: float, cache_ttl_s: float,
                 log: DecisionLog, confidence: float = DEFAULT_CONFIDENCE, learn: Learn = "sync",
                 sample_rate: float = DEFAULT_SAMPLE_RATE, clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[], float] = time.perf_counter, rng: Random | None = None,
                 features: TextFeatures | None = None,
                 new_classifier: Callable[[int], OnlineClassifier] = OnlineClassifier,
                 max_background: int = MAX_BACKGROUND, max_cache_entries: int = MAX_CACHE_ENTRIES,
                 fallbacks: Sequence[ProviderSettings] = ()) -> None:
        if not budget_s > 0:
            raise ValueError(f"budget_s must be above 0, not {budget_s!r}")
        if not cache_ttl_s >= 0:
            raise ValueError(f"cache_ttl_s must not be negative, not {cache_ttl_s!r}")
        if not 0 <= confidence <= 1 or not 0 <= sample_rate <= 1:
            raise ValueError("confidence and sample_rate must be between 0 and 1")
        if learn not in ("sync", "async"):
            raise ValueError(f"learn must be 'sync' or 'async', not {learn!r}")
        if max_background < 1 or max_cache_entries < 1:
            raise ValueError("max_background and max_cache_entries must be at least 1")
        self.name = "content_analysis"
        self.budget_s = budget_s
        self.client = client
        self.settings = settings
        self.providers = (settings, *fallbacks)  # asked in turn while the one before fails
        self.cache_ttl_s = cache_ttl_s
        self.log = log
        self.confidence = confidence
        self.learn = learn
        self.sample_rate = sample_rate
        self.clock = clock  # for cache expiry
        self.timer = timer  # for elapsed_s
        self.rng = rng if rng is not None else Random()
        self.features = features if features is not None else TextFeatures()
        self.new_classifier = new_classifier
        self.max_background = max_background
        self.max_cache_entries = max_cache_entries
        self.skipped_labels = 0  # background labels not started because max_background were in flight
        self._cache: dict[bytes, tuple[int, float]] = {}  # signature -> (index, expires at)
        self._models: dict[str, _RouteModel] = {}
        # Labels in flight by signature: a second request for the same content waits for (or skips) the first's.
        self._labelling: dict[bytes, asyncio.Task[tuple[int | None, str]]] = {}

    async def decide(self, request: RoutingRequest) -> Decision:
        started = self.timer()
        excerpt = body_excerpt(request.body)
        signature = _signature(request, excerpt)
        cached = self._cached(signature)
        if cached is not None:
            return Decision(cached, "cache", "seen before", self.timer() - started)
        features = self.features(excerpt)  # the body alone: each route has a model of its own
        model = self._model(request)
        label, confidence = model.classifier.predict(features)
        if confidence >= self.confidence:
            if self.sample_rate and self.rng.random() < self.sample_rate:
                self._label_in_background(request, signature, features, model, label)
            return Decision(label, "model", f"confidence {confidence:.2f}", self.timer() - started)
        if self.learn == "async":
            started_label = self._label_in_background(request, signature, features, model, None)
            reason = LABELLING if started_label else LABELLERS_BUSY
            return Decision(None, "fallback", reason, self.timer() - started)
        task = self._labelling.get(signature) or self._start_label(request, signature, features, model, None)
        # Shielded: when the budget cancels this request, the LLM's answer still teaches the model.
        index, reason = await asyncio.shield(task)
        return Decision(index, "llm" if index is not None else "fallback", reason, self.timer() - started)

    async def drain(self) -> None:
        """Wait until the labels in flight have landed (a graceful shutdown; tests)."""
        while self._labelling:
            await asyncio.gather(*self._labelling.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the labels in flight and wait until they have stopped."""
        tasks = list(self._labelling.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _cached(self, signature: bytes) -> int | None:
        entry = self._cache.get(signature)
        if entry is None:
            return None
        index, expires = entry
        if self.clock() >= expires:
            del self._cache[signature]
            return None
        return index

    def _store(self, signature: bytes, index: int) -> None:
        if not self.cache_ttl_s:
            return
        self._cache.pop(signature, None)
        if len(self._cache) >= self.max_cache_entries:
            del self._cache[next(iter(self._cache))]  # the oldest stored: dicts keep insertion order
        self._cache[signature] = (index, self.clock() + self.cache_ttl_s)

    def _model(self, request: RoutingRequest) -> _RouteModel:
        """The route's model; a new one when the route's backends changed (the old labels name other backends)."""
        model = self._models.get(request.route)
        if model is None or model.backends != request.backends:
            model = self._models[request.route] = _RouteModel(
                request.backends, self.new_classifier(len(request.backends)))
        return model

    def _label_in_background(self, request: RoutingRequest, signature: bytes, features: SparseVector,
                             model: _RouteModel, model_label: int | None) -> bool:
        """Start a label nobody waits for; False when one is already in flight for this content or too many are."""
        if signature in self._labelling:
            return True
        if len(self._labelling) >= self.max_background:
            self.skipped_labels += 1
            return False
        self._start_label(request, signature, features, model, model_label)
        return True

    def _start_label(self, request: RoutingRequest, signature: bytes, features: SparseVector,
                     model: _RouteModel, model_label: int | None) -> asyncio.Task[tuple[int | None, str]]:
        task = asyncio.create_task(self._label(request, signature, features, model, model_label))
        self._labelling[signature] = task  # also keeps the task from being garbage-collected

        def forget(done: asyncio.Task[tuple[int | None, str]]) -> None:
            if self._labelling.get(signature) is done:
                del self._labelling[signature]

        task.add_done_callback(forget)
        return task

    async def _label(self, request: RoutingRequest, signature: bytes, features: SparseVector,
                     model: _RouteModel, model_label: int | None) -> tuple[int | None, str]:
        """Ask the LLM; on an answer, teach the route's model and cache it. (index, reason); never raises."""
        backends = [(backend.index, backend.url, backend.description) for backend in request.backends]
        system, user = routing_prompt(request.method, request.path, request.headers, request.body, backends)
        failure: ProviderError | None = None
        for settings in self.providers:
            try:
                result = await self.client.chat(settings, system, user)
            except ProviderError as exc:
                failure = exc
                continue
            break
        else:
            assert failure is not None
            return None, f"llm {failure.kind}"
        index = parse_choice(result.text, len(request.backends))
        if index is None:
            return None, UNREADABLE
        if self._models.get(request.route) is model:  # not when the route's backends changed meanwhile
            model.classifier.learn(features, index)
        self._store(signature, index)
        if model_label is not None:
            self.log.compare(request.route, model_label == index)
        return index, "llm answered"


def _signature(request: RoutingRequest, excerpt: str) -> bytes:
    """A digest of what the LLM is shown that decides its answer. The path is left out (the template stands for
    it, so /users/1 and /users/2 with the same body share a decision), and so are the headers, which differ from
    one client to the next (user agents, request ids) and would make nearly every request a miss."""
    parts = [request.route, request.method, request.template, excerpt]
    for backend in request.backends:
        parts += [str(backend.index), backend.url, backend.description]
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).digest()
