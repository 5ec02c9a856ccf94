"""The control plane's side of the request guards: which route and settings blocks they are, and their checks.

The blocks are compiled by the data plane's own code (protocols.guards) to validate them, so what is saved is
exactly what the proxy will accept. A key a block does not know is refused at its path (`cors.alow_origin`) in
the words of every block (routes.block_keys); the compiler then judges the keys the block has.
"""
from __future__ import annotations

from typing import Any

from protocols.guards import GUARD_BLOCKS, validate_blocks
from routes.block_keys import refuse_unknown

Errors = dict[str, list[str]]

GUARD_FIELDS = GUARD_BLOCKS  # ("cors", "limits", "ip_rules", "security_headers")


def _merge(errors: Errors, found: Errors, prefix: str = "") -> None:
    for key, messages in found.items():
        errors.setdefault(prefix + key, []).extend(messages)


def validate_guard(block: str, value: Any, errors: Errors) -> None:
    """Field-level errors of one of a route's guard blocks (`cors.origins[0]: ...`), compiled by the data plane."""
    _merge(errors, validate_blocks({block: refuse_unknown(block, value, errors)}))


def validate_settings_blocks(data: dict[str, Any], errors: Errors) -> None:
    """Errors of the gateway-wide guard blocks of a configuration file (`jwt` and `rate_limit`, with their JWKS
    URL, are routes.access_blocks')."""
    # A block that is not an object at all is reported by the import itself.
    blocks = {name: data[name] for name in GUARD_FIELDS if isinstance(data.get(name), dict)}
    _merge(errors, validate_blocks({name: refuse_unknown(name, block, errors) for name, block in blocks.items()}))
