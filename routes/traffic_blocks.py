"""The checks of a route's traffic intelligence blocks, `abuse` and `api_docs`, by the data plane's own compilers
(protocols.abuse.config, protocols.apidocs.config), each problem at its path."""
from __future__ import annotations

from typing import Any

from protocols.abuse.config import LOWER
from protocols.abuse.config import compile_policy as compile_abuse
from protocols.apidocs.config import compile_policy as compile_api_docs
from protocols.block_errors import BlockError, Issues
from routes.block_keys import refuse_unknown

Errors = dict[str, list[str]]


def _merge(errors: Errors, block: str, issues: Issues) -> None:
    for path, messages in BlockError(issues.errors).prefixed(block).items():
        errors.setdefault(path, []).extend(messages)


def check_abuse(field: Any, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """An `abuse` block; `action: "lower"` lowers a limit, so the route needs one: its own `rate_limit` or
    `personalized_limits`."""
    if value is None:
        return
    known = refuse_unknown("abuse", value, errors)
    issues = Issues()
    policy = compile_abuse(known, issues)
    if issues:
        _merge(errors, "abuse", issues)
        return
    if policy and policy.action == LOWER and not policy.personalized_limits and not doc.get("rate_limit"):
        errors.setdefault("abuse.action", []).append(
            '"lower" lowers the client\'s rate limit, and this route has none: add a rate_limit, set '
            'personalized_limits, or use "block".')


def check_api_docs(field: Any, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """An `api_docs` block."""
    if value is None:
        return
    known = refuse_unknown("api_docs", value, errors)
    issues = Issues()
    compile_api_docs(known, issues)
    if issues:
        _merge(errors, "api_docs", issues)
