"""The control plane's side of the request guards: which route and settings blocks they are, and their checks.

The blocks are compiled by the data plane's own code (protocols.guards) to validate them, so what is saved is
exactly what the proxy will accept.
"""
from __future__ import annotations

from typing import Any

from protocols.guards import GUARD_BLOCKS, validate_blocks

Errors = dict[str, list[str]]

GUARD_FIELDS = GUARD_BLOCKS  # ("cors", "limits", "ip_rules", "security_headers")


def _merge(errors: Errors, found: Errors, prefix: str = "") -> None:
    for key, messages in found.items():
        errors.setdefault(prefix + key, []).extend(messages)


def validate_guards(doc: dict[str, Any], errors: Errors) -> None:
    """Field-level errors of a route document's guard blocks (`cors.origins[0]: ...`)."""
    _merge(errors, validate_blocks(doc))


def validate_settings_blocks(data: dict[str, Any], errors: Errors) -> None:
    """Errors of the gateway-wide guard blocks of a configuration file (`jwt` and `rate_limit`, with their JWKS
    URL, are routes.access_blocks')."""
    # A block that is not an object at all is reported by the import itself.
    _merge(errors, validate_blocks({name: data.get(name) for name in GUARD_FIELDS if isinstance(data.get(name), dict)}))
