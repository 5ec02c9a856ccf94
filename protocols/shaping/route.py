"""RouteShaping: a route's transformation, cache and compression blocks compiled together, once per table build."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocols.block_errors import BlockError, Issues
from protocols.cache.config import CachePolicy
from protocols.cache.config import compile_policy as compile_cache
from protocols.compression.config import CompressionPolicy
from protocols.compression.config import compile_policy as compile_compression
from protocols.transform import RequestTransform, ResponseTransform

BLOCKS = ("request_transformation", "response_transformation", "cache", "compression")


@dataclass(frozen=True, slots=True)
class RouteShaping:
    """What happens to a route's traffic besides forwarding. Each part is None when the route does not use it."""

    request: RequestTransform | None = None
    response: ResponseTransform | None = None
    cache: CachePolicy | None = None
    compression: CompressionPolicy | None = None

    @classmethod
    def from_policies(cls, policies: dict[str, Any]) -> RouteShaping | None:
        """Compile `RouteSpec.policies`; None when the route uses none of the four blocks (the proxy's fast path).

        Raises BlockError whose `errors` name each problem by its full path (`cache.ttl_s`,
        `request_transformation.headers[0].pattern`), every block checked before raising.
        """
        errors: dict[str, list[str]] = {}
        request = response = None
        value = policies.get("request_transformation")
        if value is not None:
            try:
                request = RequestTransform.from_config(value)
            except BlockError as exc:
                errors.update(exc.prefixed("request_transformation"))
        value = policies.get("response_transformation")
        if value is not None:
            try:
                response = ResponseTransform.from_config(value)
            except BlockError as exc:
                errors.update(exc.prefixed("response_transformation"))
        cache = compression = None
        for block in ("cache", "compression"):
            value = policies.get(block)
            if value is None:
                continue
            issues = Issues()
            policy = compile_cache(value, issues) if block == "cache" else compile_compression(value, issues)
            if issues:
                errors.update(BlockError(issues.errors).prefixed(block))
            elif block == "cache":
                cache = policy
            elif policy is not None and policy.enabled:  # type: ignore[union-attr]
                compression = policy
        if errors:
            raise BlockError(errors)
        shaping = cls(
            request if request is not None and not request.is_empty else None,
            response if response is not None and not response.is_empty else None,
            cache,  # type: ignore[arg-type]
            compression,  # type: ignore[arg-type]
        )
        if shaping.request is None and shaping.response is None and cache is None and compression is None:
            return None
        return shaping
