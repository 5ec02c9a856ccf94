"""Validation of a route's `request_transformation`, `response_transformation`, `cache` and `compression` blocks.

Each block is compiled by the very code the data plane runs (protocols.transform, protocols.cache,
protocols.compression), so a block the control plane accepts is one the proxy can build, and every message
names its field by path (`request_transformation.headers[1].pattern`). Catastrophic regular expressions are
refused by protocols.transform.regex's static check, which the data plane applies too, and here also by
routes.regex_safety's `check_regex` (its timing probe catches polynomial blow-ups a static check misses).

Keys the blocks do not know at their top level are not errors here; `KNOWN_KEYS` lets routes.validation report
them by path like the other blocks' (`routers[2].cache.ttl`). Inside a rule (a header rule, a mapping, a
condition) an unknown key is an error: it would silently do nothing.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from protocols.cache.policy import KEYS as CACHE_KEYS
from protocols.cache.policy import compile_policy as compile_cache
from protocols.compression.policy import KEYS as COMPRESSION_KEYS
from protocols.compression.policy import compile_policy as compile_compression
from protocols.transform import REQUEST_KEYS, RESPONSE_KEYS, PolicyError, RequestTransform, ResponseTransform
from protocols.transform.errors import Issues
from protocols.transform.regex import extra_check
from routes.regex_safety import check_regex

Errors = dict[str, list[str]]

BLOCKS = ("request_transformation", "response_transformation", "cache", "compression")
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "request_transformation": REQUEST_KEYS,
    "response_transformation": RESPONSE_KEYS,
    "cache": CACHE_KEYS,
    "compression": COMPRESSION_KEYS,
}


@contextmanager
def _control_plane_regex_checks() -> Iterator[None]:
    token = extra_check.set(check_regex)
    try:
        yield
    finally:
        extra_check.reset(token)


def _merge(errors: Errors, found: dict[str, list[str]]) -> None:
    for key, messages in found.items():
        errors.setdefault(key, []).extend(messages)


def validate_request_transformation(value: Any, errors: Errors) -> None:
    """Field-level errors of a `request_transformation` block (null: none)."""
    if value is None:
        return
    try:
        with _control_plane_regex_checks():
            RequestTransform.from_config(value)
    except PolicyError as exc:
        _merge(errors, exc.prefixed("request_transformation"))


def validate_response_transformation(value: Any, errors: Errors) -> None:
    """Field-level errors of a `response_transformation` block (null: none)."""
    if value is None:
        return
    try:
        with _control_plane_regex_checks():
            ResponseTransform.from_config(value)
    except PolicyError as exc:
        _merge(errors, exc.prefixed("response_transformation"))


def validate_cache(value: Any, errors: Errors) -> None:
    """Field-level errors of a `cache` block (null: the route does not cache)."""
    if value is None:
        return
    issues = Issues()
    compile_cache(value, issues)
    if issues:
        _merge(errors, PolicyError(issues.errors).prefixed("cache"))


def validate_compression(value: Any, errors: Errors) -> None:
    """Field-level errors of a `compression` block (null: the route does not compress)."""
    if value is None:
        return
    issues = Issues()
    compile_compression(value, issues)
    if issues:
        _merge(errors, PolicyError(issues.errors).prefixed("compression"))
