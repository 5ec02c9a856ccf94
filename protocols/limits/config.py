"""RateLimitPolicy: a compiled `rate_limit` block (algorithm, limit, window, burst, key scope, store choice)
and `limit_key`, the pure function that names the counter a request spends from. A block that cannot be
compiled raises protocols.block_errors.BlockError at the key it names."""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from protocols.block_errors import BlockError

FIXED_WINDOW = "fixed_window"
SLIDING_WINDOW = "sliding_window"
TOKEN_BUCKET = "token_bucket"
# Names compared without case, "_" or "-": FixedWindow, fixed_window and fixed-window are one name.
_ALGORITHMS = {"fixedwindow": FIXED_WINDOW, "slidingwindow": SLIDING_WINDOW, "tokenbucket": TOKEN_BUCKET}
# The earlier gateway's `strategy` names, as key scopes.
_STRATEGIES = {
    "perip": ("ip",), "peruser": ("user",), "perroute": ("route",), "peripandroute": ("ip", "route"),
    "peruserandroute": ("user", "route"), "perapikey": ("api_key",), "perheader": ("header",), "global": (),
    "perconsumer": ("consumer",),
}
_SCOPES = frozenset({"ip", "user", "consumer", "route", "api_key", "header", "global"})
_PER = {"requests_per_second": 1, "requests_per_minute": 60, "requests_per_hour": 3600}
KNOWN_KEYS = frozenset({
    # the earlier gateway's block
    "strategy", "requests_per_window", "window_duration", "burst_allowance", "window_type", "enable_redis",
    "redis_key_prefix",
    # the multi-protocol example's
    "requests_per_minute", "burst_size",
    # Rusta's names
    "algorithm", "limit", "window_s", "burst", "scope", "header", "api_key_header", "missing_identity",
    "store", "key_prefix", "on_store_error", "fallback_limit", "requests_per_second", "requests_per_hour",
    "enabled",
})
# Identities longer than this are hashed in keys: a header value is client-chosen and could be huge, and an
# API key should not sit in Redis in the clear.
_MAX_PLAIN = 64
_BY_IP = ("ip",)


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """One limit: `limit` requests per `window_s` seconds per key, by `algorithm`.

    For a token bucket `capacity` is the bucket size (the burst) and it refills at limit/window_s per second;
    for the windows `capacity` equals `limit`. `namespace` starts every key of this policy, so policies that
    share a store (a global one and per-route ones) never share counters, and a changed policy starts fresh.
    """

    algorithm: str = SLIDING_WINDOW
    limit: int = 100
    window_s: float = 60.0
    capacity: int = 100
    scope: tuple[str, ...] = ("ip",)
    header: bytes = b""
    api_key_header: bytes = b"x-api-key"
    missing_identity: str = "ip"  # "ip": fall back to the client's address; "skip": do not limit
    store: str = "local"
    on_store_error: str = "open"
    fallback_limit: int = 100
    enabled: bool = True
    name: str = ""
    namespace: str = ""
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def rate(self) -> float:
        """Token bucket refill, tokens per second."""
        return self.limit / self.window_s

    @classmethod
    def from_config(cls, block: dict[str, Any], name: str = "") -> RateLimitPolicy:
        """Compile a `rate_limit` block. `name` (e.g. "global" or "route:orders") goes into every key."""
        return _compile(block, name)


def _compile(block: Any, name: str) -> RateLimitPolicy:
    if not isinstance(block, dict):
        raise BlockError.at("", "The rate_limit block must be a JSON object.")
    unknown = sorted(set(block) - KNOWN_KEYS)
    if unknown:
        raise BlockError.at("", f"Unknown rate_limit key(s) {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(KNOWN_KEYS))}.")
    if block.get("enabled") is False:
        # `{"enabled": false}` on a route exempts it from the gateway-wide limit: nothing else is needed.
        return _finish(SLIDING_WINDOW, 1, 1.0, 1, ("ip",), b"", b"x-api-key", "ip", "local", "open", 1, False, name,
                       ())
    warnings: list[str] = []
    algorithm = SLIDING_WINDOW
    scope: tuple[str, ...] = ("ip",)
    strategy = block.get("strategy")
    if strategy is not None:
        # The earlier gateway used `strategy` for the key scope (PerIP); its multi-protocol example used it
        # for the algorithm (sliding_window). Both are accepted: the value says which it is.
        norm = _norm(strategy)
        if norm in _ALGORITHMS:
            algorithm = _ALGORITHMS[norm]
        elif norm in _STRATEGIES:
            scope = _STRATEGIES[norm]
        else:
            raise BlockError.at("strategy", f"rate_limit.strategy {strategy!r} is neither a key scope (PerIP, PerUser, "
                                             "PerRoute, PerIPAndRoute, PerUserAndRoute, PerAPIKey, PerHeader, "
                                             "PerConsumer, Global) nor an algorithm (fixed_window, sliding_window, "
                                             "token_bucket).")
    for key in ("window_type", "algorithm"):
        if block.get(key) is not None:
            norm = _norm(block[key])
            if norm not in _ALGORITHMS:
                raise BlockError.at(key, "Must be fixed_window, sliding_window or token_bucket.")
            algorithm = _ALGORITHMS[norm]
    if block.get("scope") is not None:
        scope = _scope(block["scope"])

    limit, window_s = _limit_and_window(block)
    capacity = limit
    if block.get("burst") is not None or block.get("burst_size") is not None:
        key = "burst" if block.get("burst") is not None else "burst_size"
        capacity = _int(block[key], key, minimum=1)
        if capacity < limit:
            raise BlockError.at(key, f"rate_limit.{key} is the bucket size; it cannot be below the limit ({limit}).")
    elif block.get("burst_allowance") is not None:
        capacity = limit + _int(block["burst_allowance"], "burst_allowance", minimum=0)
    if capacity != limit and algorithm != TOKEN_BUCKET:
        warnings.append(f"burst ({capacity}) only applies to token_bucket; {algorithm} admits {limit} per window.")
        capacity = limit

    header = b""
    if "header" in scope:
        if not isinstance(block.get("header"), str) or not block["header"]:
            raise BlockError.at("header", "rate_limit.header names the header whose value is the key (scope 'header').")
        header = block["header"].lower().encode()
    api_key_header = block.get("api_key_header", "x-api-key")
    if not isinstance(api_key_header, str) or not api_key_header:
        raise BlockError.at("api_key_header", "Must be a header name.")

    missing_identity = _choice(block, "missing_identity", ("ip", "skip"), "ip")
    store = _choice(block, "store", ("local", "redis"), "local")
    if block.get("enable_redis") is not None:
        if not isinstance(block["enable_redis"], bool):
            raise BlockError.at("enable_redis", "Must be true or false.")
        if block.get("store") is None:
            store = "redis" if block["enable_redis"] else "local"
    on_store_error = _choice(block, "on_store_error", ("open", "closed"), "open")
    fallback_limit = limit
    if block.get("fallback_limit") is not None:
        fallback_limit = _int(block["fallback_limit"], "fallback_limit", minimum=1)
    enabled = block.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BlockError.at("enabled", "Must be true or false.")
    prefix = block.get("key_prefix", block.get("redis_key_prefix", ""))
    if not isinstance(prefix, str):
        raise BlockError.at("key_prefix", "Must be a string.")
    return _finish(algorithm, limit, window_s, capacity, scope, header, api_key_header.lower().encode(),
                   missing_identity, store, on_store_error, fallback_limit, enabled,
                   f"{prefix}:{name}" if prefix and name else prefix or name, tuple(warnings))


def _finish(algorithm: str, limit: int, window_s: float, capacity: int, scope: tuple[str, ...], header: bytes,
            api_key_header: bytes, missing_identity: str, store: str, on_store_error: str, fallback_limit: int,
            enabled: bool, name: str, warnings: tuple[str, ...]) -> RateLimitPolicy:
    shape = f"{algorithm}|{limit}|{window_s!r}|{capacity}|{','.join(scope)}|{header.decode()}|{name}"
    fingerprint = hashlib.blake2b(shape.encode(), digest_size=4).hexdigest()
    return RateLimitPolicy(
        algorithm=algorithm, limit=limit, window_s=window_s, capacity=capacity, scope=scope, header=header,
        api_key_header=api_key_header, missing_identity=missing_identity, store=store,
        on_store_error=on_store_error, fallback_limit=fallback_limit, enabled=enabled, name=name,
        namespace=f"{name}:{fingerprint}" if name else fingerprint, warnings=warnings,
    )


def _norm(value: Any) -> str:
    if not isinstance(value, str):
        raise BlockError.at("", f"rate_limit: {value!r} should be a name.")
    return value.replace("_", "").replace("-", "").lower()


def _scope(value: Any) -> tuple[str, ...]:
    parts = [value] if isinstance(value, str) else value
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise BlockError.at("scope", 'Must be a name or a list, e.g. ["ip", "route"].')
    if len(parts) == 1 and _norm(parts[0]) in _STRATEGIES:
        return _STRATEGIES[_norm(parts[0])]
    unknown = [p for p in parts if p not in _SCOPES]
    if unknown:
        raise BlockError.at("scope", f"Unknown {', '.join(unknown)}; use {', '.join(sorted(_SCOPES))}.")
    return tuple(dict.fromkeys(p for p in parts if p != "global"))


def _limit_and_window(block: dict[str, Any]) -> tuple[int, float]:
    given = [key for key in ("limit", "requests_per_window", *_PER) if block.get(key) is not None]
    if len(given) > 1:
        raise BlockError.at("", f"rate_limit: give one of {', '.join(given)}, not several.")
    if not given:
        raise BlockError.at("", "rate_limit needs a limit: limit (+ window_s), requests_per_window "
                                 "(+ window_duration) or requests_per_minute.")
    key = given[0]
    limit = _int(block[key], key, minimum=1)
    if key in _PER:
        if block.get("window_s") is not None or block.get("window_duration") is not None:
            raise BlockError.at(key, f"rate_limit.{key} fixes the window; drop window_s / window_duration.")
        return limit, float(_PER[key])
    window_key = "window_s" if block.get("window_s") is not None else "window_duration"
    window = block.get(window_key, 60)
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0.001 <= window <= 86400 * 31:
        raise BlockError.at(window_key, "Must be a number of seconds (at most 31 days).")
    return limit, float(window)


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 10_000_000:
        raise BlockError.at(key, f"Must be an integer from {minimum} to 10000000.")
    return value


def _choice(block: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = block.get(key, default)
    if value not in choices:
        raise BlockError.at(key, f"Must be one of {', '.join(choices)}.")
    return str(value)


def _identity(value: str | bytes) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if len(text) > _MAX_PLAIN or any(c in text for c in "|\r\n"):
        return "#" + hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
    return text


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def limit_key(policy: RateLimitPolicy, route_name: str, client_ip: str, user: str | None,
              headers: Iterable[tuple[bytes, bytes]] = (), consumer: str | None = None) -> str | None:
    """The counter this request spends from, or None when this policy does not limit it.

    `headers` are ASGI headers (lower-case names). Parts by scope: ip -> the client address (as the proxy
    resolved it through trusted proxies), route -> the route's name, consumer -> the consumer the API key or
    the JWT's subject belongs to (so a consumer's key and tokens share one counter), user -> that consumer
    when known, else the authenticated subject, api_key -> a hash of the `api_key_header` value (never the
    key itself), header -> the `header` value (hashed when long). A missing user, consumer, API key or header
    falls back to the client address (`missing_identity: "ip"`, the default, so anonymous clients are still
    limited) or, with `missing_identity: "skip"`, leaves the request unlimited (None). No scope at all is one
    global counter.
    """
    if not policy.enabled:
        return None
    if policy.scope == _BY_IP:  # the default scope, on every request of most limited routes
        return policy.namespace + "|ip=" + client_ip
    parts = [policy.namespace]
    for part in policy.scope:
        if part == "ip":
            parts.append("ip=" + client_ip)
        elif part == "route":
            parts.append("route=" + _identity(route_name))
        else:
            if part == "consumer" or (part == "user" and consumer):
                value: str | bytes | None = consumer or None
                label = "consumer="
            elif part == "user":
                value = user or None
                label = "user="
            elif part == "api_key":
                value = _header(headers, policy.api_key_header)
                label = "key="
                if value:
                    value = hashlib.blake2b(value, digest_size=12).hexdigest()
            else:
                value = _header(headers, policy.header)
                label = "h="
            if value:
                parts.append(label + _identity(value))
            elif policy.missing_identity == "skip":
                return None
            elif "ip" not in policy.scope:
                parts.append("ip=" + client_ip)
    return "|".join(parts)


def ceil_seconds(value: float) -> int:
    """Delta-seconds for a header: whole seconds, rounded up so a client never retries too early."""
    return max(0, math.ceil(value - 1e-9))
