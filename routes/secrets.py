"""Secrets inside configuration blocks: redacted wherever configuration is shown, restored when sent back."""
from __future__ import annotations

from typing import Any

REDACTED = "<redacted>"
# Keys whose values are secrets wherever they appear in a policy or settings block.
SECRET_KEYS = frozenset({"secret", "api_key", "password", "private_key", "client_secret", "token"})


def redact(value: Any) -> Any:
    """A copy with every secret value replaced by a marker, at any depth."""
    if isinstance(value, dict):
        return {k: (REDACTED if k in SECRET_KEYS and v not in (None, "") else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def restore_secrets(new: Any, old: Any, path: str, missing: list[str]) -> Any:
    """`new` with every `<redacted>` secret replaced by the one stored in `old` at the same place.

    Exports, the API and the admin show secrets as `<redacted>`; sending such a document back must keep the
    stored secret, not store the marker. A marker with nothing stored behind it is recorded in `missing`.
    """
    if isinstance(new, dict):
        old_dict = old if isinstance(old, dict) else {}
        out = {}
        for key, value in new.items():
            here = f"{path}.{key}" if path else str(key)
            if key in SECRET_KEYS and value == REDACTED:
                if old_dict.get(key) in (None, "", REDACTED):
                    missing.append(here)
                out[key] = old_dict.get(key)
            else:
                out[key] = restore_secrets(value, old_dict.get(key), here, missing)
        return out
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        return [restore_secrets(value, old_list[i] if i < len(old_list) else None, f"{path}[{i}]", missing)
                for i, value in enumerate(new)]
    return new


def missing_secret_errors(missing: list[str], prefix: str = "") -> dict[str, list[str]]:
    """Errors by path for `<redacted>` markers that have no stored secret behind them."""
    return {f"{prefix}{path}": [f"The secret is '{REDACTED}' and none is stored here to keep; send the real value."]
            for path in missing}
