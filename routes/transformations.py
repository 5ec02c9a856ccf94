"""Validation of a route's `request_transformation`, `response_transformation`, `cache` and `compression` blocks.

Each block is compiled by the very code the data plane runs (protocols.transform, protocols.cache,
protocols.compression), so a block the control plane accepts is one the proxy can build, and every message
names its field by path (`request_transformation.headers[1].pattern`). Catastrophic regular expressions are
refused by protocols.regex_safety, the check the data plane applies too; here, inside its `timing_probe()`, it
also times each pattern with a repetition (the probe catches polynomial blow-ups a static check misses).

Keys the blocks do not know at their top level are refused by routes.validation, by path and in the same words
as in every block (routes.block_keys declares them). Inside a rule (a header rule, a mapping, a condition) the
data plane's compiler refuses an unknown key at its path: it would silently do nothing.
"""
from __future__ import annotations

from typing import Any

from protocols.block_errors import BlockError, Issues
from protocols.cache.config import compile_policy as compile_cache
from protocols.compression.config import compile_policy as compile_compression
from protocols.regex_safety import timing_probe
from protocols.transform import RequestTransform, ResponseTransform

Errors = dict[str, list[str]]


def _merge(errors: Errors, found: dict[str, list[str]]) -> None:
    for key, messages in found.items():
        errors.setdefault(key, []).extend(messages)


def validate_request_transformation(value: Any, errors: Errors) -> None:
    """Field-level errors of a `request_transformation` block (null: none)."""
    if value is None:
        return
    try:
        with timing_probe():
            RequestTransform.from_config(value)
    except BlockError as exc:
        _merge(errors, exc.prefixed("request_transformation"))


def validate_response_transformation(value: Any, errors: Errors) -> None:
    """Field-level errors of a `response_transformation` block (null: none)."""
    if value is None:
        return
    try:
        with timing_probe():
            ResponseTransform.from_config(value)
    except BlockError as exc:
        _merge(errors, exc.prefixed("response_transformation"))


def validate_cache(value: Any, errors: Errors) -> None:
    """Field-level errors of a `cache` block (null: the route does not cache)."""
    if value is None:
        return
    issues = Issues()
    compile_cache(value, issues)
    if issues:
        _merge(errors, BlockError(issues.errors).prefixed("cache"))


def validate_compression(value: Any, errors: Errors) -> None:
    """Field-level errors of a `compression` block (null: the route does not compress)."""
    if value is None:
        return
    issues = Issues()
    compile_compression(value, issues)
    if issues:
        _merge(errors, BlockError(issues.errors).prefixed("compression"))
