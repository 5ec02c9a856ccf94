"""Reading a `jwt` config block: every key checked once, at table-build time; a BlockError names the key."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from protocols.auth.claims import ClaimRules
from protocols.auth.keys import HMAC_ALGORITHMS, SUPPORTED, VerifyKey, pem_key, secret_keys
from protocols.block_errors import BlockError

KNOWN_KEYS = frozenset({
    # the earlier gateway's block
    "secret", "issuer", "audience", "required_claims",
    # Rusta's additions
    "algorithms", "public_key", "algorithm", "public_keys", "jwks_url", "jwks_cache_s", "jwks_min_refresh_s",
    "jwks_timeout_s", "leeway_s", "require_exp", "required_scopes", "scope_claim", "required_roles",
    "roles_claim", "forward_claims", "realm", "cache_size", "cache_ttl_s",
})
DEFAULTS: dict[str, Any] = {
    "leeway_s": 30.0, "require_exp": True, "jwks_cache_s": 300.0, "jwks_min_refresh_s": 10.0,
    "jwks_timeout_s": 5.0, "cache_size": 1024, "cache_ttl_s": 60.0, "roles_claim": "roles", "realm": "",
}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 5.6.2 field name
# Fields the proxy owns or that change how the message is framed: a claim must never set them.
_RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
    "proxy-authorization", "proxy-authenticate", "authorization", "cookie", "x-forwarded-for",
    "x-forwarded-proto", "x-forwarded-host", "x-request-id", "via", "forwarded",
})


@dataclass(frozen=True, slots=True)
class CompiledJwt:
    algorithms: frozenset[str]
    static_keys: tuple[VerifyKey, ...]
    jwks_url: str
    jwks_cache_s: float
    jwks_min_refresh_s: float
    jwks_timeout_s: float
    rules: ClaimRules
    forward: tuple[tuple[str, bytes], ...]
    realm: str
    cache_size: int
    cache_ttl_s: float


def compile_block(block: Any) -> CompiledJwt:
    if not isinstance(block, dict):
        raise BlockError.at("", "The jwt block must be a JSON object.")
    unknown = sorted(set(block) - KNOWN_KEYS)
    if unknown:
        raise BlockError.at("", f"Unknown jwt key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}.")
    cfg = {**DEFAULTS, **block}
    algorithms = _algorithms(cfg)
    keys: list[VerifyKey] = []
    if cfg.get("secret") is not None:
        keys += secret_keys(cfg["secret"], sorted(algorithms))
    if cfg.get("public_key") is not None:
        keys.append(pem_key(cfg["public_key"], cfg.get("algorithm"), where="public_key"))
    elif cfg.get("algorithm") is not None:
        raise BlockError.at("algorithm", "jwt.algorithm goes with jwt.public_key; for a secret use jwt.algorithms.")
    public_keys = cfg.get("public_keys") or []
    if not isinstance(public_keys, list):
        raise BlockError.at("public_keys", 'Must be a list of {"pem": ..., "algorithm": ..., "kid": ...}.')
    for index, entry in enumerate(public_keys):
        where = f"public_keys[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"pem", "algorithm", "kid"}:
            raise BlockError.at(where, 'Must be {"pem": ..., "algorithm": ..., "kid": ...} (kid optional).')
        keys.append(pem_key(entry.get("pem"), entry.get("algorithm"), entry.get("kid"), where=where))
    jwks_url = _jwks_url(cfg.get("jwks_url"))
    for key in keys:
        if key.algorithm not in algorithms:
            raise BlockError.at("algorithms",
                                 f"A configured key uses {key.algorithm}, which jwt.algorithms does not list.")
    sources = {key.algorithm for key in keys}
    for algorithm in sorted(algorithms):
        if algorithm in HMAC_ALGORITHMS and algorithm not in sources:
            raise BlockError.at("algorithms", f"jwt.algorithms lists {algorithm} but no jwt.secret is configured.")
        if algorithm not in HMAC_ALGORITHMS and algorithm not in sources and not jwks_url:
            raise BlockError.at("algorithms",
                                 f"jwt.algorithms lists {algorithm} but no public key or jwks_url provides it.")
    rules = ClaimRules(
        issuers=_strings(cfg.get("issuer"), "issuer"),
        audiences=_strings(cfg.get("audience"), "audience"),
        leeway_s=_seconds(cfg, "leeway_s", maximum=3600),
        require_exp=_bool(cfg, "require_exp"),
        required_claims=tuple(sorted(_strings(cfg.get("required_claims"), "required_claims"))),
        scope_claims=(_name(cfg["scope_claim"], "scope_claim"),) if cfg.get("scope_claim") else
        ("scope", "scp", "scopes"),
        required_scopes=tuple(sorted(_strings(cfg.get("required_scopes"), "required_scopes"))),
        roles_claim=_name(cfg["roles_claim"], "roles_claim"),
        required_roles=tuple(sorted(_strings(cfg.get("required_roles"), "required_roles"))),
    )
    cache_size = cfg["cache_size"]
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or not 0 <= cache_size <= 100_000:
        raise BlockError.at("cache_size", "Must be an integer from 0 (no cache) to 100000.")
    if not isinstance(cfg["realm"], str):
        raise BlockError.at("realm", "Must be a string.")
    return CompiledJwt(
        algorithms=algorithms, static_keys=tuple(keys), jwks_url=jwks_url,
        jwks_cache_s=_seconds(cfg, "jwks_cache_s", minimum=1), jwks_min_refresh_s=_seconds(cfg, "jwks_min_refresh_s"),
        jwks_timeout_s=_seconds(cfg, "jwks_timeout_s", minimum=0.1, maximum=60), rules=rules,
        forward=_forward(cfg.get("forward_claims")), realm=cfg["realm"], cache_size=cache_size,
        cache_ttl_s=_seconds(cfg, "cache_ttl_s", maximum=3600),
    )


def _algorithms(cfg: dict[str, Any]) -> frozenset[str]:
    explicit = cfg.get("algorithms")
    if explicit is None:
        implied = set()
        if cfg.get("secret") is not None:
            implied.add("HS256")
        if cfg.get("public_key") is not None and isinstance(cfg.get("algorithm"), str):
            implied.add(cfg["algorithm"])
        for entry in cfg.get("public_keys") or []:
            if isinstance(entry, dict) and isinstance(entry.get("algorithm"), str):
                implied.add(entry["algorithm"])
        if cfg.get("jwks_url"):
            implied.add("RS256")  # what most identity providers publish; list others in jwt.algorithms
        if not implied:
            raise BlockError.at("", "The jwt block needs a key: secret, public_key + algorithm, public_keys or "
                                    "jwks_url.")
        explicit = sorted(implied)
    if isinstance(explicit, str) or not isinstance(explicit, list) or not explicit:
        raise BlockError.at("algorithms", 'Must be a non-empty list, e.g. ["RS256"].')
    for algorithm in explicit:
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise BlockError.at("algorithms",
                                 "jwt.algorithms may not contain 'none': unsigned tokens are never accepted.")
        if algorithm not in SUPPORTED:
            raise BlockError.at("algorithms",
                                 f"{algorithm!r} is not supported; use {', '.join(sorted(SUPPORTED))}.")
    return frozenset(explicit)


def _jwks_url(value: Any) -> str:
    if value is None or value == "":
        return ""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockError.at("jwks_url", "Must be an http(s) URL.")
    return str(value)


def _strings(value: Any, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise BlockError.at(name, "Must be a string or a list of non-empty strings.")
    return frozenset(values)


def _name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BlockError.at(name, "Must be a claim name.")
    return value


def _bool(cfg: dict[str, Any], name: str) -> bool:
    value = cfg[name]
    if not isinstance(value, bool):
        raise BlockError.at(name, "Must be true or false.")
    return value


def _seconds(cfg: dict[str, Any], name: str, minimum: float = 0.0, maximum: float = 86400.0) -> float:
    value = cfg[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
        raise BlockError.at(name, f"Must be a number of seconds from {minimum:g} to {maximum:g}.")
    return float(value)


def _forward(value: Any) -> tuple[tuple[str, bytes], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise BlockError.at("forward_claims", 'Must map claim names to header names, e.g. {"sub": "X-User-Id"}.')
    forward = []
    for claim, header in value.items():
        if not isinstance(header, str) or not _TOKEN.match(header):
            raise BlockError.at("forward_claims", f"{header!r} (for claim {claim!r}) is not a valid header name.")
        if header.lower() in _RESERVED_HEADERS:
            raise BlockError.at("forward_claims", f"A claim may not set {header}; the proxy owns that field.")
        forward.append((claim, header.lower().encode()))
    names = [h for _, h in forward]
    if len(set(names)) != len(names):
        raise BlockError.at("forward_claims", "Two claims are sent as the same header.")
    return tuple(forward)
