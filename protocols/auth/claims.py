"""Checks on a verified token's claims (time, issuer, audience, required claims, scopes, roles) and the
upstream headers built from them. Pure functions of the claims, the rules and the clock."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Headers = list[tuple[bytes, bytes]]


class ClaimError(Exception):
    """A claim check failed; the message is safe to show the client (error_description)."""


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """What a policy requires of the claims, compiled from its config."""

    issuers: frozenset[str] = frozenset()
    audiences: frozenset[str] = frozenset()
    leeway_s: float = 30.0
    require_exp: bool = True
    required_claims: tuple[str, ...] = ()
    scope_claims: tuple[str, ...] = ("scope", "scp", "scopes")
    required_scopes: tuple[str, ...] = ()
    roles_claim: str = "roles"
    required_roles: tuple[str, ...] = ()


def check_claims(claims: Mapping[str, Any], rules: ClaimRules, now: float) -> None:
    """Raise ClaimError for the first rule the claims break (401 invalid_token)."""
    leeway = rules.leeway_s
    exp = _numeric(claims, "exp")
    if exp is None and rules.require_exp:
        raise ClaimError("The token has no expiry (exp).")
    if exp is not None and exp <= now - leeway:
        raise ClaimError("The token has expired.")
    nbf = _numeric(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise ClaimError("The token is not valid yet (nbf).")
    iat = _numeric(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise ClaimError("The token was issued in the future (iat).")
    for name in rules.required_claims:
        if claims.get(name) is None:
            raise ClaimError(f"The token lacks the required claim '{name}'.")
    if rules.issuers and claims.get("iss") not in rules.issuers:
        raise ClaimError("The token was issued by an issuer this route does not trust.")
    _check_audience(claims.get("aud"), rules.audiences)
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise ClaimError("The token's subject (sub) must be a string.")


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int in Python (a JSON true is not a NumericDate), and Python's json reads NaN and Infinity:
    # an expiry of NaN compares false with everything, so it would never expire.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ClaimError(f"The token's '{name}' claim must be a number of seconds since the epoch.")
    return float(value)


def _check_audience(aud: Any, audiences: frozenset[str]) -> None:
    if aud is None:
        if audiences:
            raise ClaimError("The token has no audience (aud).")
        return
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ClaimError("The token's audience (aud) must be a string or a list of strings.")
    # RFC 7519 4.1.3: a token naming audiences must be rejected by a recipient not among them, which includes
    # a route that names none (an audience-restricted token is not a bearer token for everything).
    if not audiences.intersection(values):
        raise ClaimError("The token is not intended for this audience.")


def _string_set(value: Any, split: bool) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split()) if split else frozenset((value,))
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def scopes_of(claims: Mapping[str, Any], rules: ClaimRules) -> frozenset[str]:
    """The token's scopes from the first scope claim present: a space-separated string or a list."""
    for name in rules.scope_claims:
        if name in claims:
            return _string_set(claims[name], split=True)
    return frozenset()


def roles_of(claims: Mapping[str, Any], rules: ClaimRules) -> frozenset[str]:
    return _string_set(claims.get(rules.roles_claim), split=False)


def missing_scopes(scopes: frozenset[str], roles: frozenset[str], rules: ClaimRules) -> tuple[str, str]:
    """("", "") when every required scope and role is held, else (what is missing, the scope to report)."""
    lacking = [s for s in rules.required_scopes if s not in scopes]
    if lacking:
        return f"The token lacks the scope {' '.join(lacking)}.", " ".join(rules.required_scopes)
    lacking = [r for r in rules.required_roles if r not in roles]
    if lacking:
        return f"The token lacks the role {' '.join(lacking)}.", ""
    return "", ""


def forwarded_headers(claims: Mapping[str, Any], forward: tuple[tuple[str, bytes], ...]) -> Headers:
    """Upstream headers from claims: strings as they are, numbers in decimal, lists comma-joined.

    A value with a control character (a CR/LF would split the header) or a nested object is left out
    rather than sent mangled.
    """
    headers: Headers = []
    for claim, header in forward:
        value = claims.get(claim)
        if value is None or isinstance(value, dict):
            continue
        if isinstance(value, list):
            if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
                continue
            text = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            continue
        headers.append((header, text.encode()))
    return headers
