"""A route's `ai_policy` block and the gateway-wide `ai` block, compiled (or refused by path) once per table.

Route block (every key optional except `strategy` when enabled):

    enabled                 true
    strategy                "content_analysis", "latency_prediction", "anomaly_detection", or the name of an
                            installed decision module (entry point group `rusta.ai_strategies`); also the earlier
                            gateway's object form {"content_analysis": {"model": "gpt-4o-mini", ...}}, whose inner
                            keys are the strategy's own keys below
    fallback_backend_index  null          the backend taken when the strategy has no answer; null: balancing
    decision_timeout_ms     1000          how long a request waits for a decision (1-60000)
    decision_header         false         answer with X-Rusta-AI-Decision: strategy, source, backend
    provider, model, api_key, base_url, timeout_ms, max_concurrency
                                          the LLM (content_analysis and installed modules); each overrides the
                                          gateway-wide `ai` block's key, which applies when the provider is the same
    fallback_providers      []            providers asked in turn when the one before fails: names or objects
                                          {provider, model, base_url}; keys from the gateway block or environment
    streaming               false         the earlier gateway's; a routing answer is a few tokens, never streamed
    content_analysis:   learn ("sync" | "async"), confidence (0.8), sample_rate (0.02), cache_ttl_s (300)
    latency_prediction: min_samples (3), horizon_s (60)
    anomaly_detection:  mode ("shadow" | "enforce"), anomaly_backend_index (null: refuse with 429), threshold (6),
                        window_s (10); no fallback_backend_index (normal requests are balanced)
    installed modules:  options ({}): passed to the module as is

A key of a strategy other than the route's is refused (it would do nothing). Keys are resolved now; only API keys
read from the environment (OPENAI_API_KEY...) wait for the data plane, which starts where they are set.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from protocols.ai.anomaly import DEFAULT_THRESHOLD, DEFAULT_WINDOW_S
from protocols.ai.providers import REFUSED_PROVIDERS, ProviderSettings, resolve_provider
from protocols.block_errors import BlockError, Issues, join

ENTRY_POINT_GROUP = "rusta.ai_strategies"
BUILT_IN = ("content_analysis", "latency_prediction", "anomaly_detection")
LLM_KEYS = ("provider", "model", "api_key", "base_url", "timeout_ms", "max_concurrency")
COMMON_KEYS = ("enabled", "strategy", "fallback_backend_index", "decision_timeout_ms", "decision_header",
               "fallback_providers", "streaming")
DEFAULT_DECISION_TIMEOUT_MS = 1000
DEFAULT_PROVIDER_TIMEOUT_MS = 10_000
DEFAULT_MAX_CONCURRENCY = 8
FALLBACK_PROVIDER_KEYS = ("provider", "model", "base_url")


@dataclass(frozen=True)
class Option:
    """One key of a strategy: its default and how a value is checked (a message, or None when it is fine)."""

    default: Any
    check: Callable[[Any], str | None]


def _number(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            return f"Must be a number from {low:g} to {high:g}."
        return None
    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"Must be one of {', '.join(repr(c) for c in choices)}."
    return check


def _index_or_null(value: Any) -> str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return None
    return "Must be null or the position of a backend."


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "Must be an object."


# Each built-in strategy's own keys; an installed module has one, `options`.
STRATEGY_OPTIONS: dict[str, dict[str, Option]] = {
    "content_analysis": {
        "learn": Option("sync", _one_of("sync", "async")),
        "confidence": Option(0.8, _number(0.5, 1)),
        "sample_rate": Option(0.02, _number(0, 1)),
        "cache_ttl_s": Option(300, _number(0, 86_400)),
    },
    "latency_prediction": {
        "min_samples": Option(3, _number(1, 1000)),
        "horizon_s": Option(60, _number(1, 86_400)),
    },
    "anomaly_detection": {
        "mode": Option("shadow", _one_of("shadow", "enforce")),
        "anomaly_backend_index": Option(None, _index_or_null),
        "threshold": Option(DEFAULT_THRESHOLD, _number(0.1, 1000)),
        "window_s": Option(DEFAULT_WINDOW_S, _number(0.5, 3600)),
    },
}
CUSTOM_OPTIONS = {"options": Option({}, _object)}
ALL_STRATEGY_KEYS = frozenset(key for options in STRATEGY_OPTIONS.values() for key in options) | {"options"}
ROUTE_KEYS = frozenset((*COMMON_KEYS, *LLM_KEYS)) | ALL_STRATEGY_KEYS
GATEWAY_KEYS = frozenset(LLM_KEYS)


@dataclass(frozen=True)
class ProviderChoice:
    """An LLM as configured; `settings()` reads a missing key from the environment (the data plane's). `model`
    (and an openai_compatible `base_url`) may be "" when neither the route nor the gateway block gave one."""

    provider: str
    model: str
    api_key: str = field(default="", repr=False)
    base_url: str = ""
    timeout_s: float = DEFAULT_PROVIDER_TIMEOUT_MS / 1000
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    def settings(self, environ: Mapping[str, str]) -> ProviderSettings:
        """ProviderSettings, or ValueError saying what is missing (an API key nobody set)."""
        return ProviderSettings.build(self.provider, self.model, environ=environ, api_key=self.api_key,
                                      base_url=self.base_url, timeout_s=self.timeout_s,
                                      max_concurrency=self.max_concurrency)


@dataclass(frozen=True)
class AiPolicy:
    """A route's compiled `ai_policy`: which strategy with which options, its budget and what it falls back to.

    Two policies compare equal when they would decide alike, so a table swap that leaves a route's block alone
    keeps what its strategy learned."""

    strategy: str
    options: dict[str, Any]
    budget_s: float
    fallback_index: int | None
    decision_header: bool
    providers: tuple[ProviderChoice, ...]  # the LLM, then its fallbacks; () for strategies that ask none


def installed_strategies() -> dict[str, Any]:
    """{name: entry point} of the decision modules installed as packages."""
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def gateway_ai(block: Any) -> ProviderChoice | None:
    """The gateway-wide `ai` block's provider (None when the block is absent or names none); BlockError by path."""
    if block is None:
        return None
    issues = Issues()
    if not isinstance(block, dict):
        raise BlockError.at("", "Must be an object or null.")
    for key in block:
        if key not in GATEWAY_KEYS:
            issues.add(str(key), f"Unknown key; ai knows {', '.join(sorted(GATEWAY_KEYS))}.")
    choice = _provider(block, None, issues, "")
    issues.raise_if_any()
    return choice


def ai_policy(block: Any, gateway: Any, backends: int) -> AiPolicy | None:
    """A route's compiled policy, None when it has none or it is disabled; BlockError names each bad key.

    `gateway` is the gateway-wide `ai` block (raw); `backends` how many backends the route has. A provider or
    model left out here may come from the gateway block, which is saved on its own: when neither gives one, the
    policy still compiles and its strategy falls back, saying why (ProviderChoice.settings)."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise BlockError.at("", "Must be an object or null.")
    issues = Issues()
    enabled = block.get("enabled", True)
    if not isinstance(enabled, bool):
        issues.add("enabled", "Must be true or false.")
    name, options, where = _strategy(block, issues)
    defaults_ai: ProviderChoice | None = None
    try:
        defaults_ai = gateway_ai(gateway)
    except BlockError:
        defaults_ai = None  # the gateway block is checked (and refused) on its own
    index = block.get("fallback_backend_index")
    if index is not None and name == "anomaly_detection":
        issues.add("fallback_backend_index", "Applies to strategies that choose a backend, not anomaly_detection "
                                             "(normal requests are balanced; see anomaly_backend_index).")
    elif index is not None and (isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < backends):
        issues.add("fallback_backend_index",
                   f"Must be null or the position of a backend (0 to {max(backends - 1, 0)}).")
    timeout = block.get("decision_timeout_ms", DEFAULT_DECISION_TIMEOUT_MS)
    if _number(1, 60_000)(timeout):
        issues.add("decision_timeout_ms", "Must be a number of milliseconds from 1 to 60000.")
    header = block.get("decision_header", False)
    if not isinstance(header, bool):
        issues.add("decision_header", "Must be true or false.")
    if block.get("streaming") not in (None, False):
        issues.add("streaming", "Must be false: a routing decision is a few tokens and is never streamed.")
    for key in block:
        if key not in ROUTE_KEYS:
            issues.add(str(key), f"Unknown key; ai_policy knows {', '.join(sorted(ROUTE_KEYS))}.")
    compiled: dict[str, Any] = {}
    if name is not None:
        compiled = _options(name, options, where, block, backends, issues)
    uses_llm = name is not None and name != "latency_prediction" and name != "anomaly_detection"
    providers: tuple[ProviderChoice, ...] = ()
    if name is not None and not uses_llm:
        for key in (*LLM_KEYS, "fallback_providers"):
            if key in block:
                issues.add(key, f"Applies to strategies that ask an LLM, not {name}.")
    elif name is not None:
        providers = _providers(block, options, defaults_ai, issues)
    issues.raise_if_any()
    if not enabled or name is None:
        return None
    return AiPolicy(name, compiled, float(timeout) / 1000, index, header, providers)


def _strategy(block: dict[str, Any], issues: Issues) -> tuple[str | None, dict[str, Any], str]:
    """(name, the object form's inner keys, the path they are reported under)."""
    raw = block.get("strategy")
    inner: Any
    known = (*BUILT_IN, *sorted(installed_strategies()))
    hint = f"Must name a strategy: {', '.join(known)}."
    if isinstance(raw, str):
        name, inner, where = raw, {}, ""
    elif isinstance(raw, dict) and len(raw) == 1:
        name, inner = next(iter(raw.items()))
        where = join("strategy", name)
        if inner is None:
            inner = {}
        if not isinstance(inner, dict):
            issues.add(where, "Must be an object of the strategy's keys, or null.")
            inner = {}
    else:
        if block.get("enabled", True) is not False or raw is not None:
            issues.add("strategy", hint + ' Give its name, or {"name": {its keys}} as the earlier gateway did.')
        return None, {}, ""
    if name not in BUILT_IN and name not in installed_strategies():
        issues.add("strategy", f"Unknown strategy {name!r}. {hint}")
        return None, {}, ""
    return name, inner, where


def _options(name: str, inner: dict[str, Any], where: str, block: dict[str, Any], backends: int,
             issues: Issues) -> dict[str, Any]:
    """The strategy's own keys, from the block's top level or the object form (not both), checked."""
    table = STRATEGY_OPTIONS.get(name, CUSTOM_OPTIONS)
    compiled: dict[str, Any] = {}
    for key in inner:
        if key not in table and key not in LLM_KEYS:
            issues.add(join(where, str(key)), f"Unknown key; {name} knows {', '.join(sorted((*table, 'model')))}.")
    for key in ALL_STRATEGY_KEYS - set(table):
        if key in block:
            issues.add(key, f"Applies to {_owner(key)}, not {name}.")
    for key, option in table.items():
        if key in block and key in inner and block[key] != inner[key]:
            issues.add(join(where, key), f"Also given as ai_policy.{key} with another value; give it once.")
        value = inner.get(key, block.get(key, option.default))
        if value is None and option.default is None:
            compiled[key] = None
            continue
        problem = option.check(value)
        if problem:
            issues.add(join(where, key) if key in inner else key, problem)
        compiled[key] = value
    lane = compiled.get("anomaly_backend_index")
    if lane is not None and isinstance(lane, int) and lane >= backends:
        path = join(where, "anomaly_backend_index") if "anomaly_backend_index" in inner else "anomaly_backend_index"
        issues.add(path, f"Must be null or the position of a backend (0 to {max(backends - 1, 0)}).")
    if name not in STRATEGY_OPTIONS:
        compiled["options"] = dict(compiled.get("options") or {})
        _check_installed(name, compiled["options"], join(where, "options") if "options" in inner else "options",
                         issues)
    return compiled


def _owner(key: str) -> str:
    owners = [name for name, options in STRATEGY_OPTIONS.items() if key in options]
    return owners[0] if owners else "installed decision modules"


def _check_installed(name: str, options: dict[str, Any], path: str, issues: Issues) -> None:
    """An installed module's own check of its options (`check_options(options) -> {key: message}`), if it has one."""
    try:
        factory = installed_strategies()[name].load()
    except Exception as exc:  # a third party's package: any failure to import it is its problem, reported here
        issues.add("strategy", f"The decision module {name!r} cannot be loaded: {type(exc).__name__}: {exc}")
        return
    check = getattr(factory, "check_options", None)
    if check is None:
        return
    try:
        problems = check(options) or {}
    except Exception as exc:
        issues.add(path, f"The module's check failed: {type(exc).__name__}: {exc}")
        return
    for key, message in problems.items():
        issues.add(join(path, str(key)) if key else path, str(message))


def _providers(block: dict[str, Any], inner: dict[str, Any], gateway: ProviderChoice | None,
               issues: Issues) -> tuple[ProviderChoice, ...]:
    merged = dict(block)
    for key in LLM_KEYS:
        if key in inner:
            if key in block and block[key] != inner[key]:
                issues.add(key, "Also given inside strategy with another value; give it once.")
            merged[key] = inner[key]
    primary = _provider(merged, gateway, issues, "")
    chosen = [primary] if primary is not None else []
    raw = block.get("fallback_providers") or []
    if not isinstance(raw, list):
        issues.add("fallback_providers", "Must be a list of provider names or {provider, model, base_url} objects.")
        raw = []
    for position, entry in enumerate(raw):
        path = join("fallback_providers", position)
        if isinstance(entry, str):
            entry = {"provider": entry}
        if not isinstance(entry, dict):
            issues.add(path, "Must be a provider name or an object {provider, model, base_url}.")
            continue
        for key in entry:
            if key not in FALLBACK_PROVIDER_KEYS:
                issues.add(join(path, str(key)), "Unknown key; a fallback provider knows base_url, model, provider "
                                                 "(its key comes from the gateway-wide ai block or the environment).")
        fallback = _provider({**entry, "timeout_ms": merged.get("timeout_ms"),
                              "max_concurrency": merged.get("max_concurrency")}, gateway, issues, path)
        if fallback is not None:
            chosen.append(fallback)
    return tuple(chosen)


def _provider(block: dict[str, Any], gateway: ProviderChoice | None, issues: Issues,
              prefix: str) -> ProviderChoice | None:
    """One provider from `block`'s keys, the gateway's filling those it leaves out when it names the same provider.
    Its model (and an openai_compatible base_url) may still be missing: `ProviderChoice.settings` says so."""
    name = block.get("provider")
    if name is None:
        if gateway is None:
            return None
        name = gateway.provider
    if not isinstance(name, str) or not name:
        issues.add(join(prefix, "provider"), "Must be a provider name like \"openai\".")
        return None
    inherited = gateway if gateway is not None and gateway.provider == name else None
    model = block.get("model") or (inherited.model if inherited else "")
    api_key = block.get("api_key") or (inherited.api_key if inherited else "")
    base_url = block.get("base_url") or (inherited.base_url if inherited else "")
    for key, value in (("model", model), ("api_key", api_key), ("base_url", base_url)):
        if not isinstance(value, str):
            issues.add(join(prefix, key), "Must be a string.")
            return None
    # openai_compatible's base_url may come from the gateway block: its absence is not an error here.
    if name != "openai_compatible" or base_url:
        try:
            resolve_provider(name, base_url)
        except ValueError as exc:
            message = str(exc)
            wrong_url = "base_url" in message and name not in REFUSED_PROVIDERS
            issues.add(join(prefix, "base_url" if wrong_url else "provider"),
                       message[:1].upper() + message[1:] + ".")
            return None
    timeout = block.get("timeout_ms")
    if timeout is None:
        timeout = inherited.timeout_s * 1000 if inherited else DEFAULT_PROVIDER_TIMEOUT_MS
    if _number(1, 600_000)(timeout):
        issues.add(join(prefix, "timeout_ms"), "Must be a number of milliseconds from 1 to 600000.")
        return None
    concurrency = block.get("max_concurrency")
    if concurrency is None:
        concurrency = inherited.max_concurrency if inherited else DEFAULT_MAX_CONCURRENCY
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 10_000:
        issues.add(join(prefix, "max_concurrency"), "Must be a whole number from 1 to 10000.")
        return None
    return ProviderChoice(name, model, api_key, base_url, float(timeout) / 1000, concurrency)
