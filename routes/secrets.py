"""Secrets inside configuration blocks: redacted wherever configuration is shown, restored when sent back.

What counts as a secret, at any depth of a policy or settings block:
- the value of a key named in SECRET_KEYS (`secret`, `password`, `api_key`, `token`, `client_secret`, ...);
- the value of a header that carries credentials (SENSITIVE_HEADERS), as a mapping key
  (`{"set": {"Authorization": "Bearer ..."}}`) or as a rule (`{"name": "X-Api-Key", "value": "..."}`);
- the password inside a URL (`redis://:pw@host:6379/0` shows as `redis://:<redacted>@host:6379/0`);
- a private key in PEM form under any key (`-----BEGIN ... PRIVATE KEY-----`, say pasted into a route's
  `jwt.public_key` by mistake).
So a route's `jwt.secret` and `ftp.password` are redacted like the gateway-wide `jwt.secret` and `ai.api_key`.
Public material is not secret: `public_key(s)`, `jwks_url` (unless it has a password), `issuer`, `ftp.username`.
"""
from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"
SECRET_KEYS = frozenset({
    "secret", "api_key", "apikey", "password", "passphrase", "private_key", "client_secret", "client_key",
    "token", "access_token", "refresh_token", "api_token", "auth_token", "bearer_token", "secret_key",
    "secret_access_key", "hmac_secret", "signing_key", "redis_password",
})
# Request headers whose values are credentials, as transformations set them for the upstream.
SENSITIVE_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "apikey", "x-auth-token",
    "x-access-token", "x-goog-api-key", "ocp-apim-subscription-key",
})
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^/@:]*:)([^/@]+)(@)")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|-----BEGIN OPENSSH PRIVATE KEY-----")


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and (key.lower() in SECRET_KEYS or key.lower() in SENSITIVE_HEADERS)


def _holds_header_secret(container: dict[Any, Any]) -> bool:
    """A header rule like {"name": "Authorization", "value": "..."}: its `value` is a secret."""
    name = container.get("name")
    return isinstance(name, str) and name.strip().lower() in SENSITIVE_HEADERS


def _is_secret_field(key: Any, container: dict[Any, Any]) -> bool:
    return _is_secret_key(key) or (key == "value" and _holds_header_secret(container))


def _is_private_key(value: Any) -> bool:
    return isinstance(value, str) and _PRIVATE_KEY.search(value) is not None


def redact_url(text: str) -> str:
    """The URL with its password (if any) replaced by the marker."""
    return _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text, count=1)


def redact(value: Any) -> Any:
    """A copy with every secret value replaced by a marker, at any depth."""
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret_field(k, value) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if _is_private_key(value):
        return REDACTED
    if isinstance(value, str) and "@" in value:
        return redact_url(value)
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
            if value == REDACTED and (_is_secret_field(key, new) or _is_private_key(old_dict.get(key))):
                if old_dict.get(key) in (None, "", REDACTED):
                    missing.append(here)
                out[key] = old_dict.get(key)
            else:
                out[key] = restore_secrets(value, old_dict.get(key), here, missing)
        return out
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        return [restore_secrets(value, _counterpart(value, i, old_list), f"{path}[{i}]", missing)
                for i, value in enumerate(new)]
    if isinstance(new, str) and REDACTED in new and _URL_PASSWORD.match(new):
        if isinstance(old, str) and redact_url(old) == new and old != new:
            return old
        missing.append(path)
    return new


def _identity(item: Any) -> Any:
    """What names a list item whatever its position: its `name`, else its `provider` and `model` (an llm
    target), else nothing (it is known by its position)."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("name"), str):
        return ("name", item["name"])
    if isinstance(item.get("provider"), str) and isinstance(item.get("model"), str):
        return ("target", item["provider"], item["model"])
    return None


def _counterpart(item: Any, index: int, old_list: list[Any]) -> Any:
    """The stored item `item` was shown as: the one of the same identity, so a list reordered (or with an entry
    removed) before it is sent back keeps each secret with its own entry; by position when the item has no
    identity or its identity is not unique among the stored ones; None for an entry that is new."""
    identity = _identity(item)
    if identity is not None:
        same = [stored for stored in old_list if _identity(stored) == identity]
        if len(same) == 1:
            return same[0]
        if not same:
            return None
    return old_list[index] if index < len(old_list) else None


def missing_secret_errors(missing: list[str], prefix: str = "") -> dict[str, list[str]]:
    """Errors by path for `<redacted>` markers that have no stored secret behind them."""
    return {f"{prefix}{path}": [f"The secret is '{REDACTED}' and none is stored here to keep; send the real value."]
            for path in missing}
