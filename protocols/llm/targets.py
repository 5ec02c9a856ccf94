"""An LLM route's targets (provider, model, key, price), compiled from `llm.targets[i]` or refused by path.

    provider           (required)  openai, anthropic, ollama, openai_compatible (needs base_url); groq, mistral,
                                   xai: openai_compatible at their documented base URLs (protocols.ai.providers)
    model              (required)  the provider's model name, sent as is
    name               "<provider>/<model>"  what metrics, logs and the fallback reasons call it; unique per route
    api_key            —           the provider key (a secret, write-only)
    api_key_env        —           the name of the variable holding the key in the gateway's environment
    base_url           the provider's  without /v1 (Rusta adds the provider's own path)
    weight             1           1..1000: share of traffic among targets of the same priority
    priority           0           0..100: lower is tried first; higher ones are fallbacks
    price_per_million  —           {input, output, cached_input} in the currency of the route's budgets;
                                   cached_input defaults to input; unpriced targets record tokens, no cost
    context_window     —           the model's context in tokens (a context-length fallback looks for a larger one)
    timeout_ms         60000       1..600000: until the first byte of the answer

Without api_key and api_key_env, the key is read from the provider's usual variable (OPENAI_API_KEY,
ANTHROPIC_API_KEY, GROQ_API_KEY, MISTRAL_API_KEY, XAI_API_KEY) in the environment the block is compiled in, as
protocols.ai.config does. A key missing there is not a compile error: the control plane that saves the block
may run with another environment than the gateway that serves it. The target then carries `missing_key` (why
it cannot be called) and the gateway treats it as unavailable.
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from protocols.ai.providers import (
    ANTHROPIC_VERSION,
    COMPATIBLE_BASE_URLS,
    ENV_KEYS,
    REFUSED_PROVIDERS,
    WIRES,
    resolve_provider,
)
from protocols.block_errors import BlockError, Issues, join, unknown_key_message
from protocols.llm.budgets import Prices
from protocols.llm.formats.translate import ProviderKind
from protocols.table import BackendSpec

TARGET_KEYS = frozenset({"provider", "model", "name", "api_key", "api_key_env", "base_url", "weight", "priority",
                         "price_per_million", "context_window", "timeout_ms"})
DEFAULT_TIMEOUT_MS = 60_000
MAX_TIMEOUT_MS = 600_000
MAX_WEIGHT = 1000
MAX_PRIORITY = 100
MAX_CONTEXT_WINDOW = 100_000_000
MAX_NAME_CHARS = 128
MAX_MODEL_CHARS = 256
# A route's targets are numbered inside a block of ids of this size (backend_spec): more than MAX_TARGETS.
ID_STRIDE = 64
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What an HTTP header value may carry (visible ASCII): a key with a newline would inject a header.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
# resolve_provider's wire names, typed.
_KINDS: dict[str, ProviderKind] = {"openai": "openai", "openai_compatible": "openai_compatible",
                                   "anthropic": "anthropic", "ollama": "ollama"}


@dataclass(frozen=True)
class Target:
    """One model behind an LLM route, with everything a call needs resolved at compile time.

    `provider` is the wire format (aliases resolved); `configured_provider` the name as written (`groq`).
    `path_prefix` is base_url's path as bytes (`/openai` for groq), put before the provider's own path.
    `missing_key` is "" when the target can be called, else why not (its key's variable is unset where this
    was compiled); such a target is skipped as unavailable, never called without its key.
    """

    name: str
    provider: ProviderKind
    model: str
    base_url: str
    api_key: str = field(default="", repr=False)
    api_key_env: str = ""
    weight: int = 1
    priority: int = 0
    prices: Prices | None = None
    context_window: int | None = None
    timeout_s: float = DEFAULT_TIMEOUT_MS / 1000
    configured_provider: str = ""
    missing_key: str = ""
    path_prefix: bytes = field(init=False, repr=False, compare=False)
    _headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)
    _specs: dict[tuple[int, int], BackendSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Header bytes are built once here, not per request.
        key = self.api_key.encode()
        headers: list[tuple[bytes, bytes]] = []
        if self.provider == "anthropic":
            if key:
                headers.append((b"x-api-key", key))
            headers.append((b"anthropic-version", ANTHROPIC_VERSION))
        elif key:  # openai, openai_compatible, and ollama behind a proxy that wants a Bearer key
            headers.append((b"authorization", b"Bearer " + key))
        object.__setattr__(self, "_headers", tuple(headers))
        object.__setattr__(self, "path_prefix", urlsplit(self.base_url).path.encode())
        object.__setattr__(self, "_specs", {})

    def url(self, path: str) -> str:
        """The full URL of one of the provider's paths: `url("/v1/chat/completions")`."""
        return self.base_url + path

    def auth_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers that authenticate a call: Bearer key, Anthropic's x-api-key and version, or none."""
        return self._headers

    def backend_spec(self, route_id: int, index: int) -> BackendSpec:
        """The target as a backend, for breakers and balancing. Ids are negative so they never meet a stored
        backend's id (the health overlay is keyed by those), and unique per (route, position). Built once per
        (route, position): the gateway asks for it on every call."""
        spec = self._specs.get((route_id, index))
        if spec is None:
            parts = urlsplit(self.base_url)
            scheme = parts.scheme
            port = parts.port or (443 if scheme == "https" else 80)
            spec = self._specs[(route_id, index)] = BackendSpec(
                id=-(route_id * ID_STRIDE + index + 1), scheme=scheme, host=parts.hostname or "", port=port,
                weight=self.weight, description=self.name)
        return spec


def compile_target(entry: Any, path: str, environ: Mapping[str, str], issues: Issues) -> Target | None:
    """One `targets[i]` entry as a Target; its problems are added to `issues` by path (and None returned)."""
    if not isinstance(entry, dict):
        issues.add(path, 'Must be an object like {"provider": "openai", "model": "gpt-4o-mini"}.')
        return None
    before = len(issues.errors)
    for key in entry:
        if key not in TARGET_KEYS:
            issues.add(join(path, str(key)), unknown_key_message("llm.targets[]", key, TARGET_KEYS))
    provider = _text(entry, "provider", path, issues, required='Required: "openai", "anthropic", "ollama" or '
                                                              '"openai_compatible" (with base_url).')
    model = _text(entry, "model", path, issues, required="Required: the provider's model name, e.g. gpt-4o-mini.",
                  limit=MAX_MODEL_CHARS)
    base_url = _text(entry, "base_url", path, issues)
    wire: ProviderKind | None = None
    resolved_url = ""
    if provider:
        try:
            kind, resolved_url = resolve_provider(provider, base_url)
            wire = _KINDS[kind]
        except ValueError as exc:
            message = str(exc)
            # resolve_provider names base_url when the URL is at fault (or missing for openai_compatible).
            at = "base_url" if "base_url" in message and provider not in REFUSED_PROVIDERS else "provider"
            known = (*WIRES, *COMPATIBLE_BASE_URLS)
            close = [] if provider in known else difflib.get_close_matches(provider, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close and provider not in REFUSED_PROVIDERS else ""
            issues.add(join(path, at), message[:1].upper() + message[1:] + "." + hint)
    name = _text(entry, "name", path, issues, empty="Must not be empty; leave it out for <provider>/<model>.",
                 limit=MAX_NAME_CHARS)
    api_key = _text(entry, "api_key", path, issues)
    if api_key and (api_key != entry["api_key"] or not _HEADER_SAFE.fullmatch(api_key)):
        issues.add(join(path, "api_key"), "Must be printable ASCII without spaces (it is sent in a header).")
    env_name = _text(entry, "api_key_env", path, issues)
    if env_name and not _ENV_NAME.fullmatch(env_name):
        issues.add(join(path, "api_key_env"), "Must be an environment variable's name, like OPENAI_API_KEY.")
    if api_key and env_name:
        issues.add(join(path, "api_key_env"), "Give api_key or api_key_env, not both.")
    weight = _whole(entry, "weight", 1, 1, MAX_WEIGHT, path, issues)
    priority = _whole(entry, "priority", 0, 0, MAX_PRIORITY, path, issues)
    window = _whole(entry, "context_window", None, 1, MAX_CONTEXT_WINDOW, path, issues)
    timeout = entry.get("timeout_ms")
    timeout = DEFAULT_TIMEOUT_MS if timeout is None else timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) \
            or not 1 <= timeout <= MAX_TIMEOUT_MS:
        issues.add(join(path, "timeout_ms"), f"Must be a number of milliseconds from 1 to {MAX_TIMEOUT_MS}.")
    prices = None
    if entry.get("price_per_million") is not None:
        try:
            prices = Prices.from_config(entry["price_per_million"], join(path, "price_per_million"))
        except BlockError as exc:
            for where, messages in exc.errors.items():
                for message in messages:
                    issues.add(where, message)
    if len(issues.errors) > before or wire is None:
        return None
    key, variable, missing = _key(provider, api_key, env_name, environ)
    return Target(name=name or f"{provider}/{model}", provider=wire, model=model, base_url=resolved_url,
                  api_key=key, api_key_env=variable, weight=weight or 1, priority=priority or 0,
                  prices=prices, context_window=window, timeout_s=float(timeout) / 1000,
                  configured_provider=provider, missing_key=missing)


def _key(provider: str, api_key: str, env_name: str, environ: Mapping[str, str]) -> tuple[str, str, str]:
    """(key, the variable it came from, why it is missing) for a target's key settings."""
    if api_key:
        return api_key, "", ""
    variable = env_name or ENV_KEYS.get(provider, "")
    if not variable:
        return "", "", ""  # ollama, openai_compatible: called without a key
    value = environ.get(variable, "").strip()
    if value and not _HEADER_SAFE.fullmatch(value):
        return "", variable, f"{variable} holds characters an HTTP header cannot carry"
    # A variable named on purpose that is unset is a mistake even for providers that need no key.
    if not value and (env_name or provider in ENV_KEYS):
        return "", variable, f"no API key: {variable} is not set where the gateway runs (or give api_key)"
    return value, variable, ""


def _text(entry: Mapping[str, Any], key: str, path: str, issues: Issues, *, required: str = "", empty: str = "",
          limit: int = 0) -> str:
    """A string key, stripped ("" when absent or null). A non-string is an issue, and so is an empty one when
    `required` (or `empty`) says why it may not be."""
    value = entry.get(key)
    if value is None:
        if required:
            issues.add(join(path, key), required)
        return ""
    if not isinstance(value, str):
        issues.add(join(path, key), "Must be a string.")
        return ""
    text = value.strip()
    if not text:
        if required or empty:
            issues.add(join(path, key), required or empty)
        return ""
    if limit and (len(text) > limit or not text.isprintable()):
        issues.add(join(path, key), f"Must be printable text of at most {limit} characters.")
        return ""
    return text


def _whole(entry: Mapping[str, Any], key: str, default: int | None, low: int, high: int, path: str,
           issues: Issues) -> int | None:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        issues.add(join(path, key), f"Must be a whole number from {low} to {high}.")
        return default
    return value
