"""DocsPolicy: a route's `api_docs` block compiled once (how often to sample, how much of a body to read, and the
declared OpenAPI document the learned one is compared with). A block that cannot be compiled raises BlockError at
the key it names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocols.block_errors import Issues, compiled, opened

DEFAULT_SAMPLE_RATE = 0.01
DEFAULT_MAX_BODY = 64 << 10
MAX_BODY_LIMIT = 1 << 20
KEYS: dict[str, Any] = {"enabled": True, "sample_rate": DEFAULT_SAMPLE_RATE, "max_body_bytes": DEFAULT_MAX_BODY,
                        "openapi": None}


@dataclass(frozen=True, slots=True)
class DocsPolicy:
    """A route's sampling for learned API docs: see the README's *API docs learned from traffic*."""

    sample_rate: float = DEFAULT_SAMPLE_RATE
    max_body_bytes: int = DEFAULT_MAX_BODY

    @classmethod
    def from_config(cls, value: Any) -> DocsPolicy | None:
        """The policy of a block; None when the block is null or `enabled` is false (nothing sampled)."""
        return compiled(compile_policy, value)


def compile_policy(value: Any, issues: Issues) -> DocsPolicy | None:
    """The policy of a block with every problem reported to `issues`; None when disabled or unusable."""
    enabled = opened(value, issues, "api_docs", KEYS, '{"sample_rate": 0.05}')
    if not isinstance(value, dict):
        return None
    rate = value.get("sample_rate", DEFAULT_SAMPLE_RATE)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        issues.add("sample_rate", "Must be a number from 0 to 1 (the share of requests sampled).")
    body = value.get("max_body_bytes", DEFAULT_MAX_BODY)
    if isinstance(body, bool) or not isinstance(body, int) or not 0 <= body <= MAX_BODY_LIMIT:
        issues.add("max_body_bytes", f"Must be a whole number of bytes from 0 to {MAX_BODY_LIMIT}.")
    declared = value.get("openapi")
    if declared is not None and (not isinstance(declared, dict) or not isinstance(declared.get("paths"), dict)):
        issues.add("openapi", 'Must be an OpenAPI 3 document (an object with "openapi" and "paths") or null.')
    elif declared is not None and not str(declared.get("openapi", "")).startswith("3."):
        issues.add("openapi.openapi", 'Must say the OpenAPI version, "3.0.x" or "3.1.x".')
    if issues or not enabled:
        return None
    return DocsPolicy(sample_rate=float(rate), max_body_bytes=body)
