"""The resilience policy blocks of a route (`retry`, `health_check`, `circuit_breaker`): their ranges and
field-level validation (their keys and defaults are declared in routes.block_keys, like every block's).

Blocks are stored as sent; a key left out takes its default where the block is used (routes.health.checks for health
checks, the data plane for retries and breakers).
"""
from __future__ import annotations

from typing import Any

from protocols.resilience import BREAKER_RULES, RETRY_RULES, Rule
from routes.block_keys import defaults

Errors = dict[str, list[str]]


HEALTH_CHECK_RULES: dict[str, Rule] = {
    "interval_s": Rule("int", 1, 3600, help="Seconds between two probes of a backend."),
    "timeout_ms": Rule("int", 50, 60_000, help="A probe without an answer by then fails with `timeout`."),
    "healthy_threshold": Rule("int", 1, 100, help="Consecutive successful probes that bring an unhealthy backend "
                                                  "back."),
    "unhealthy_threshold": Rule("int", 1, 100, help="Consecutive failed probes that take a backend out of rotation."),
    # An empty list would make every answer a failure.
    "healthy_statuses": Rule("statuses", 100, 599, allow_empty=False,
                             help="Statuses that count as healthy; null means any 2xx or 3xx."),
}
# The data plane declares the rules of the blocks it reads (protocols.resilience); the probes' are the control
# plane's own.
RULES: dict[str, dict[str, Rule]] = {
    "retry": RETRY_RULES,
    "health_check": HEALTH_CHECK_RULES,
    "circuit_breaker": BREAKER_RULES,
}

# Their defaults are routes.block_keys' (the data plane's own, for retries and breakers).
HEALTH_CHECK_DEFAULTS: dict[str, Any] = defaults("health_check")
CIRCUIT_BREAKER_DEFAULTS: dict[str, Any] = defaults("circuit_breaker")


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
        if key in value and value[key] is not None and not rule.fits(value[key]):
            errors.setdefault(f"{block}.{key}", []).append(rule.message())


def health_check_settings(block: dict[str, Any] | None) -> dict[str, Any]:
    """A route's health check with every key filled in (its defaults for keys left out or null)."""
    merged = dict(HEALTH_CHECK_DEFAULTS)
    merged.update({key: value for key, value in (block or {}).items() if key in HEALTH_CHECK_RULES
                   and value is not None})
    return merged
