"""The `guard` block of an LLM route, compiled into a Guard (or refused with every problem by path) when it is saved.

    allow              []                  re2 patterns; when given, every checked message with text must match
                                           one of them (else 400, rule guard.allow)
    deny               []                  re2 patterns, or {name, pattern}: a checked message matching one is
                                           refused (400 naming the rule: its name, else guard.deny[i])
    roles              ["system", "user"]  the roles whose messages are checked: what the client writes itself
                                           ("developer" counts as system, "function" as tool); add "assistant"
                                           or "tool" to check earlier answers and tool results too
    detect             []                  any of "card", "iban", "email", "phone" (protocols.llm.guard.detectors)
    action             "refuse"            what a detection does: "refuse" (400, rule guard.detect.<kind>) or
                                           "mask" (replaced by [card], [iban], [email], [phone] before the
                                           provider sees the prompt)
    max_prompt_tokens  null                a prompt counted above it is refused (400, rule guard.max_prompt_tokens)

Patterns are re2 syntax (flags inline, like `(?i)`): linear time whatever the prompt, so no lookaround and no
backreferences. A pattern re2 refuses, or one that matches empty text (it would match every message), is an error
at its path. Deny patterns always refuse; `action` is the detectors'.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import re2

from protocols.block_errors import Issues, join
from protocols.llm.guard.check import ROLES, Guard
from protocols.llm.guard.detectors import KINDS, OPTIONS

KEYS = ("allow", "deny", "roles", "detect", "action", "max_prompt_tokens")
DEFAULT_ROLES = ("system", "user")
ACTIONS = ("refuse", "mask")
MAX_PATTERNS = 256
MAX_PATTERN_CHARS = 2000
MAX_NAME_CHARS = 64
MAX_PROMPT_TOKENS = 10_000_000
_NAME = re2.compile(r"[A-Za-z0-9_\-]+", OPTIONS)


def compile_guard(value: Any) -> Guard:
    """The Guard of a `guard` block; BlockError with every problem, by path inside the block, when it has any."""
    issues = Issues()
    if not isinstance(value, Mapping):
        issues.add("", "Must be an object.")
        issues.raise_if_any()
    for key in value:
        if key not in KEYS:
            issues.add(join("", str(key)), f"Unknown key; the keys are {', '.join(KEYS)}.")
    deny_set, deny_rules = _pattern_set(value.get("deny", []), "deny", issues)
    allow_set, _ = _pattern_set(value.get("allow", []), "allow", issues)
    roles = _choices(value.get("roles", list(DEFAULT_ROLES)), "roles", ROLES, issues, empty_ok=False)
    detect = _choices(value.get("detect", []), "detect", KINDS, issues, empty_ok=True)
    action = value.get("action", "refuse")
    if action not in ACTIONS:
        issues.add("action", f"Must be one of {', '.join(repr(a) for a in ACTIONS)}.")
    cap = value.get("max_prompt_tokens")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_PROMPT_TOKENS):
        issues.add("max_prompt_tokens", f"Must be null or a whole number from 1 to {MAX_PROMPT_TOKENS}.")
    issues.raise_if_any()
    return Guard(roles=frozenset(roles), deny_set=deny_set, deny_rules=deny_rules, allow_set=allow_set,
                 detect=detect, action=action, max_prompt_tokens=cap)


def _choices(value: Any, path: str, allowed: tuple[str, ...], issues: Issues, *, empty_ok: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not empty_ok):
        issues.add(path, "Must be a list of " + ("" if empty_ok else "at least one of ")
                   + ", ".join(repr(a) for a in allowed) + ".")
        return ()
    chosen: list[str] = []
    for index, item in enumerate(value):
        if item not in allowed:
            issues.add(join(path, index), f"Must be one of {', '.join(repr(a) for a in allowed)}.")
        elif item in chosen:
            issues.add(join(path, index), f"{item!r} is listed twice.")
        else:
            chosen.append(item)
    return tuple(chosen)


def _pattern_set(value: Any, path: str, issues: Issues) -> tuple[Any, tuple[str, ...]]:
    """The re2 set of a pattern list (None when it is empty) and the rule each of its patterns stands for."""
    if not isinstance(value, list):
        issues.add(path, "Must be a list of patterns (strings, or objects {name, pattern}).")
        return None, ()
    if len(value) > MAX_PATTERNS:
        issues.add(path, f"At most {MAX_PATTERNS} patterns.")
        return None, ()
    patterns: list[str] = []
    rules: list[str] = []
    refused = False
    names: set[str] = set()
    for index, item in enumerate(value):
        at = join(path, index)
        pattern_at = at
        name = ""
        if isinstance(item, Mapping):
            for key in item:
                if key not in ("name", "pattern"):
                    issues.add(join(at, str(key)), "Unknown key; the keys are name, pattern.")
            name = item.get("name", "")
            if "name" in item and (not isinstance(name, str) or len(name) > MAX_NAME_CHARS
                                   or _NAME.fullmatch(name) is None):
                issues.add(join(at, "name"), f"Must be 1 to {MAX_NAME_CHARS} letters, digits, '_' or '-'.")
                name = ""
            elif name in names:
                issues.add(join(at, "name"), f"The name {name!r} is used by another pattern of {path}.")
            if name:
                names.add(name)
            pattern_at = join(at, "pattern")
            item = item.get("pattern")
        problem = _pattern_problem(item)
        if problem:
            issues.add(pattern_at, problem)
            refused = True
            continue
        patterns.append(item)
        rules.append(name or f"guard.{at}")
    if not patterns or refused:
        return None, ()
    matcher = re2.Set.SearchSet(OPTIONS)
    for pattern in patterns:
        matcher.Add(pattern)
    try:
        matcher.Compile()
    except re2.error:
        # re2 checks at compile time that its automaton fits its memory budget, since a set cannot fall back to
        # a slower matcher later.
        issues.add(path, "The patterns together are too large for re2's memory budget; use fewer or simpler ones.")
        return None, ()
    return matcher, tuple(rules)


def _pattern_problem(pattern: Any) -> str:
    """Why a pattern cannot be used, or ""."""
    if not isinstance(pattern, str) or not pattern:
        return "Must be a non-empty re2 pattern (a string)."
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"Must be at most {MAX_PATTERN_CHARS} characters."
    try:
        compiled = re2.compile(pattern, OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) \
            else str(error)
        hint = ""
        if any(operator in reason for operator in ("(?=", "(?!", "(?<=", "(?<!")):
            hint = " re2 runs in linear time and has no lookahead or lookbehind."
        elif "invalid escape sequence: \\" in reason and reason[-1:].isdigit():
            hint = " re2 runs in linear time and has no backreferences."
        return f"re2 cannot compile it: {reason}.{hint}"
    if compiled.search("") is not None:
        return "It matches empty text, so it would match every message."
    return ""
