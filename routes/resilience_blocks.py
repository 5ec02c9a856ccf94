"""The resilience policy blocks of a route (`retry`, `health_check`, `circuit_breaker`): their ranges and
field-level validation (their keys and defaults are declared in routes.block_keys, like every block's).

Blocks are stored as sent; a key left out takes its default where the block is used (routes.health.checks for health
checks, the data plane for retries and breakers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routes.block_keys import defaults

Errors = dict[str, list[str]]


@dataclass(frozen=True)
class Rule:
    """What one key of a block may hold. `kind`: int, number, bool, ratio_or_null or statuses."""

    kind: str
    low: float = 0
    high: float = 0
    allow_empty: bool = True  # for `statuses`


def _int(low: int, high: int) -> Rule:
    return Rule("int", low, high)


RETRY_RULES: dict[str, Rule] = {
    "max_retries": _int(0, 10),
    "initial_backoff_ms": _int(0, 60_000),
    "max_backoff_ms": _int(0, 600_000),
    "backoff_multiplier": Rule("number", 1, 10),
    "retry_on_status_codes": Rule("statuses", 100, 599),
    "retry_on_connection_error": Rule("bool"),
    "retry_non_idempotent": Rule("bool"),
    "budget_ratio": Rule("number", 0, 1),
    "budget_window_s": _int(1, 600),
    "budget_min_per_s": Rule("number", 0, 1000),
}
HEALTH_CHECK_RULES: dict[str, Rule] = {
    "interval_s": _int(1, 3600),
    "timeout_ms": _int(50, 60_000),
    "healthy_threshold": _int(1, 100),
    "unhealthy_threshold": _int(1, 100),
    # An empty list would make every answer a failure.
    "healthy_statuses": Rule("statuses", 100, 599, allow_empty=False),
}
CIRCUIT_BREAKER_RULES: dict[str, Rule] = {
    "enabled": Rule("bool"),
    "failure_threshold": _int(1, 1000),
    "failure_ratio": Rule("ratio_or_null", 0, 1),
    "window_s": _int(1, 3600),
    "min_requests": _int(1, 100_000),
    "open_s": _int(1, 3600),
    "half_open_requests": _int(1, 1000),
    "success_threshold": _int(1, 1000),
    "failure_statuses": Rule("statuses", 500, 599),
}
RULES: dict[str, dict[str, Rule]] = {
    "retry": RETRY_RULES,
    "health_check": HEALTH_CHECK_RULES,
    "circuit_breaker": CIRCUIT_BREAKER_RULES,
}

# Their defaults are routes.block_keys' (the data plane's own, for retries and breakers).
HEALTH_CHECK_DEFAULTS: dict[str, Any] = defaults("health_check")
CIRCUIT_BREAKER_DEFAULTS: dict[str, Any] = defaults("circuit_breaker")
RETRY_DEFAULTS: dict[str, Any] = defaults("retry")
RETRY_BUDGET_DEFAULTS: dict[str, Any] = {key: RETRY_DEFAULTS[key] for key in (
    "retry_non_idempotent", "budget_ratio", "budget_window_s", "budget_min_per_s")}


def _message(rule: Rule) -> str:
    low = int(rule.low) if rule.low == int(rule.low) else rule.low
    high = int(rule.high) if rule.high == int(rule.high) else rule.high
    if rule.kind == "int":
        return f"Must be a whole number from {low} to {high}."
    if rule.kind == "number":
        return f"Must be a number from {low} to {high}."
    if rule.kind == "ratio_or_null":
        return f"Must be null or a number from {low} to {high}."
    if rule.kind == "statuses":
        codes = "5xx HTTP status codes (500 to 599)" if low == 500 else f"HTTP status codes ({low} to {high})"
        return f"Must be a list of {codes}." if rule.allow_empty else f"Must be a non-empty list of {codes}."
    return "Must be true or false."


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _fits(rule: Rule, value: Any) -> bool:
    if rule.kind == "bool":
        return isinstance(value, bool)
    if rule.kind == "int":
        return not isinstance(value, bool) and isinstance(value, int) and rule.low <= value <= rule.high
    if rule.kind == "ratio_or_null" and value is None:
        return True
    if rule.kind in ("number", "ratio_or_null"):
        return _is_number(value) and rule.low <= value <= rule.high
    return isinstance(value, list) and (rule.allow_empty or bool(value)) and all(
        not isinstance(code, bool) and isinstance(code, int) and rule.low <= code <= rule.high for code in value
    )


def validate_block(block: str, value: Any, errors: Errors) -> None:
    """Field-level errors of one resilience block (`retry.max_retries: ...`); null means the block is not set.

    A key set to null takes its default, as if it were left out (`failure_ratio: null` is its default anyway).
    Keys the block does not know are routes.validation's to refuse, as in every block (routes.block_keys).
    """
    if value is None:
        return
    if not isinstance(value, dict):
        errors.setdefault(block, []).append("Must be an object or null.")
        return
    for key, rule in RULES[block].items():
        if key in value and value[key] is not None and not _fits(rule, value[key]):
            errors.setdefault(f"{block}.{key}", []).append(_message(rule))


def health_check_settings(block: dict[str, Any] | None) -> dict[str, Any]:
    """A route's health check with every key filled in (its defaults for keys left out or null)."""
    merged = dict(HEALTH_CHECK_DEFAULTS)
    merged.update({key: value for key, value in (block or {}).items() if key in HEALTH_CHECK_RULES
                   and value is not None})
    return merged
