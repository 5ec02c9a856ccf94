"""The control plane's side of the request guards: which route and settings blocks they are, and their checks.

The blocks are compiled by the data plane's own code (protocols.guards) to validate them, so what is saved is
exactly what the proxy will accept.
"""
from __future__ import annotations

from typing import Any

from protocols.guards import GUARD_BLOCKS, validate_blocks
from routes import network_safety

Errors = dict[str, list[str]]

GUARD_FIELDS = GUARD_BLOCKS  # ("cors", "limits", "ip_rules", "security_headers")


def _merge(errors: Errors, found: Errors, prefix: str = "") -> None:
    for key, messages in found.items():
        errors.setdefault(prefix + key, []).extend(messages)


def validate_guards(doc: dict[str, Any], errors: Errors) -> None:
    """Field-level errors of a route document's guard blocks (`cors.origins[0]: ...`)."""
    _merge(errors, validate_blocks(doc))


def validate_settings_blocks(data: dict[str, Any], errors: Errors) -> None:
    """Errors of the gateway-wide blocks of a configuration file: guard blocks, and a JWKS URL that points at a
    link-local or metadata address."""
    # A block that is not an object at all is reported by the import itself.
    _merge(errors, validate_blocks({name: data.get(name) for name in GUARD_FIELDS if isinstance(data.get(name), dict)}))
    jwt = data.get("jwt")
    if isinstance(jwt, dict):
        problem = network_safety.url_error(jwt.get("jwks_url"))
        if problem:
            errors.setdefault("jwt.jwks_url", []).append(problem)
