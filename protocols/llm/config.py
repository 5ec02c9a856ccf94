"""The `llm` block of a route of protocol llm, compiled into an LlmPolicy (or refused with every problem by path).

    targets         (required)  1 to 32 models (protocols.llm.targets: provider, model, key, price...)
    guard           —           the prompt guard (protocols.llm.guard)
    token_limits    —           tokens per minute / day per consumer, route, model (protocols.llm.budgets)
    budgets         —           money per day / week / month per consumer, route, model (protocols.llm.budgets)
    on_store_error  "open"      what token limits and budgets do while Redis is away: count locally, or refuse
    cache           —           exact answer cache: {ttl_s: 300, max_entries: 1000, max_body_bytes: 1048576};
                                absent, null or enabled false: off
    max_body_bytes  1048576     the largest request body taken (1 to 104857600)

Keys starting with `_` are refused like any unknown key: the nested compilers (guard, budgets, prices) refuse
them, and one rule for the whole block is easier to read than three.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocols.block_errors import BlockError, Issues, join, unknown_key_message
from protocols.llm.budgets import BudgetPolicy
from protocols.llm.guard import Guard, compile_guard
from protocols.llm.targets import Target, compile_target

KEYS = frozenset({"targets", "guard", "token_limits", "budgets", "on_store_error", "cache", "max_body_bytes"})
CACHE_KEYS = frozenset({"enabled", "ttl_s", "max_entries", "max_body_bytes"})
MAX_TARGETS = 32
DEFAULT_MAX_BODY_BYTES = 1 << 20
MAX_BODY_BYTES = 100 << 20  # base64 images make large prompts; beyond this a request is not a prompt
DEFAULT_CACHE_TTL_S = 300
MAX_CACHE_TTL_S = 7 * 86_400
DEFAULT_CACHE_ENTRIES = 1000
MAX_CACHE_ENTRIES = 1_000_000


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The answer cache of an LLM route: how long an answer is kept, how many, and the largest one stored."""

    ttl_s: float = DEFAULT_CACHE_TTL_S
    max_entries: int = DEFAULT_CACHE_ENTRIES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


@dataclass(frozen=True)
class LlmPolicy:
    """A compiled `llm` block. `targets` keep the block's order (a target's position is its backend index)."""

    targets: tuple[Target, ...]
    guard: Guard | None
    budgets: BudgetPolicy | None  # the route's token_limits and budgets; None when it has neither
    cache: CacheSettings | None  # None: off
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def llm_policy(block: Any, environ: Mapping[str, str] = os.environ, *, route_name: str = "") -> LlmPolicy:
    """The LlmPolicy of an `llm` block; BlockError with every problem by path inside the block.

    `environ` is where keys without `api_key` are read (the process compiling: the gateway's at load time).
    `route_name` names the route's budget counters (`route:<name>|tokens:minute|...`), so two routes never
    share them; give the route's name whenever the policy will count.
    """
    if not isinstance(block, dict):
        raise BlockError.at("", 'Must be an object with targets, like {"targets": [{"provider": "openai", '
                                '"model": "gpt-4o-mini"}]}.')
    issues = Issues()
    for key in block:
        if key not in KEYS:
            issues.add(str(key), unknown_key_message("llm", key, KEYS))
    targets = _targets(block.get("targets"), environ, issues)
    guard = None
    if block.get("guard") is not None:
        try:
            guard = compile_guard(block["guard"])
        except BlockError as exc:
            _merge(issues, exc.prefixed("guard"))
    budgets = None
    limits = {key: block[key] for key in ("token_limits", "budgets", "on_store_error") if block.get(key) is not None}
    if limits:
        try:
            budgets = BudgetPolicy.from_config(limits, name=f"route:{route_name}")
        except BlockError as exc:
            _merge(issues, exc.errors)
        if budgets is not None and not budgets.meters:
            budgets = None  # on_store_error alone limits nothing
        if "on_store_error" in limits and not ("token_limits" in limits or "budgets" in limits):
            issues.add("on_store_error", "Applies to token_limits and budgets; this block has neither.")
    cache = _cache(block.get("cache"), issues)
    max_body = _bytes(block.get("max_body_bytes"), "max_body_bytes", issues)
    issues.raise_if_any()
    return LlmPolicy(targets=targets, guard=guard, budgets=budgets, cache=cache, max_body_bytes=max_body)


def _targets(value: Any, environ: Mapping[str, str], issues: Issues) -> tuple[Target, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TARGETS:
        issues.add("targets", f"Required: a list of 1 to {MAX_TARGETS} targets, each "
                              '{"provider": "openai", "model": "gpt-4o-mini", ...}.')
        return ()
    compiled: list[Target] = []
    named: dict[str, int] = {}
    for index, entry in enumerate(value):
        path = join("targets", index)
        target = compile_target(entry, path, environ, issues)
        if target is None:
            continue
        if target.name in named:
            given = isinstance(entry, dict) and entry.get("name") is not None
            issues.add(join(path, "name") if given else path,
                       f"{target.name!r} is also the name of targets[{named[target.name]}]; names are unique "
                       "within a route" + ("." if given else ": give each a name."))
        named.setdefault(target.name, index)
        compiled.append(target)
    return tuple(compiled)


def _cache(value: Any, issues: Issues) -> CacheSettings | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        issues.add("cache", 'Must be an object like {"ttl_s": 300}, or null.')
        return None
    for key in value:
        if key not in CACHE_KEYS:
            issues.add(join("cache", str(key)), unknown_key_message("llm.cache", key, CACHE_KEYS))
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        issues.add("cache.enabled", "Must be true or false.")
    ttl = value.get("ttl_s")
    ttl = DEFAULT_CACHE_TTL_S if ttl is None else ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) \
            or not 1 <= ttl <= MAX_CACHE_TTL_S:
        issues.add("cache.ttl_s", f"Must be a number of seconds from 1 to {MAX_CACHE_TTL_S}.")
        ttl = DEFAULT_CACHE_TTL_S
    entries = value.get("max_entries")
    entries = DEFAULT_CACHE_ENTRIES if entries is None else entries
    if isinstance(entries, bool) or not isinstance(entries, int) or not 1 <= entries <= MAX_CACHE_ENTRIES:
        issues.add("cache.max_entries", f"Must be a whole number from 1 to {MAX_CACHE_ENTRIES}.")
        entries = DEFAULT_CACHE_ENTRIES
    largest = _bytes(value.get("max_body_bytes"), "cache.max_body_bytes", issues)
    if enabled is False:
        return None
    return CacheSettings(ttl_s=float(ttl), max_entries=entries, max_body_bytes=largest)


def _bytes(value: Any, path: str, issues: Issues) -> int:
    if value is None:
        return DEFAULT_MAX_BODY_BYTES
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BODY_BYTES:
        issues.add(path, f"Must be a whole number of bytes from 1 to {MAX_BODY_BYTES}.")
        return DEFAULT_MAX_BODY_BYTES
    return value


def _merge(issues: Issues, errors: Mapping[str, list[str]]) -> None:
    for path, messages in errors.items():
        for message in messages:
            issues.add(path, message)
