"""CachePolicy: a route's `cache` block compiled once, and the HTTP caching rules (RFC 9111, for a shared cache)
that decide whether an upstream response may be stored and for how long."""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import Any

from protocols.block_errors import Issues, compiled
from protocols.transform.headers import TOKEN

Headers = list[tuple[bytes, bytes]]
KEYS = frozenset({"enabled", "ttl_s", "vary_headers", "store_set_cookie", "stale_if_error_s", "max_body_bytes",
                  "methods", "statuses", "coalesce", "coalesce_wait_s"})
# Heuristically cacheable statuses (RFC 9110 15.1) a shared cache stores by default; 206 needs range support.
DEFAULT_STATUSES = frozenset({200, 203, 204, 300, 301, 404, 405, 410, 414, 501})
DEFAULT_TTL_S = 60
DEFAULT_MAX_BODY = 1 << 20
MAX_BODY_LIMIT = 64 << 20


@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a stored response is fresh, how long after that it may still stand in for a failing upstream, and
    the age it already had when it arrived (the upstream's `Age`)."""

    fresh_s: float
    stale_s: float
    initial_age: float


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A route's cache: see protocols.cache for the keys and their defaults."""

    ttl_s: float = DEFAULT_TTL_S
    vary_headers: tuple[bytes, ...] = ()
    store_set_cookie: bool = False
    stale_if_error_s: float = 0.0
    max_body_bytes: int = DEFAULT_MAX_BODY
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    statuses: frozenset[int] = DEFAULT_STATUSES
    coalesce: bool = True
    coalesce_wait_s: float = 10.0

    @classmethod
    def from_config(cls, value: Any) -> CachePolicy | None:
        """The policy of a block; None when the block is null or `enabled` is false (no caching)."""
        return compiled(compile_policy, value)

    def freshness(self, status: int, headers: Headers, now: float, authorized: bool) -> Freshness | None:
        """Whether (and for how long) a response may be stored, by RFC 9111 for a shared cache; None: not stored.

        Not stored: a status outside `statuses`; `no-store`, `private`, `no-cache` (a stored copy would have to be
        revalidated before every use, and this cache does not revalidate, so it treats no-cache as no-store);
        `Vary: *`; `Set-Cookie` unless `store_set_cookie`; a response to a request with Authorization unless it
        says `public`, `s-maxage` or `must-revalidate` (RFC 9111 3.5); anything with no freshness left.
        Freshness: `s-maxage`, else `max-age`, else `Expires` (an invalid date means already expired), else the
        route's `ttl_s`; less the upstream's `Age`. Stale-if-error window: the response's own `stale-if-error`
        directive, else the route's `stale_if_error_s`; none after `must-revalidate` or `proxy-revalidate`.
        """
        if status not in self.statuses:
            return None
        directives: dict[str, str] = {}
        expires: bytes | None = None
        age = 0.0
        for name, value in headers:
            if name == b"cache-control":
                directives.update(parse_cache_control(value))
            elif name == b"expires":
                expires = value
            elif name == b"age":
                age = _seconds(value.decode("latin-1")) or 0.0
            elif name == b"vary" and b"*" in value:
                return None
            elif name == b"set-cookie" and not self.store_set_cookie:
                return None
        if "no-store" in directives or "private" in directives or "no-cache" in directives:
            return None
        if authorized and not ("public" in directives or "s-maxage" in directives
                               or "must-revalidate" in directives):
            return None
        lifetime: float | None = None
        for directive in ("s-maxage", "max-age"):
            if directive in directives:
                lifetime = _seconds(directives[directive])
                if lifetime is None:
                    return None  # an unreadable max-age is treated as stale (RFC 9111 4.2.1)
                break
        if lifetime is None and expires is not None:
            lifetime = _expires_in(expires, now)
        if lifetime is None:
            lifetime = self.ttl_s
        fresh = lifetime - age
        if fresh <= 0:
            return None
        stale = self.stale_if_error_s
        if "stale-if-error" in directives:
            stale = _seconds(directives["stale-if-error"]) or 0.0
        if "must-revalidate" in directives or "proxy-revalidate" in directives:
            stale = 0.0
        return Freshness(fresh, stale, age)


def parse_cache_control(value: bytes) -> dict[str, str]:
    """`max-age=60, no-cache="set-cookie", public` -> {"max-age": "60", "no-cache": "set-cookie", "public": ""}."""
    directives = {}
    for item in value.decode("latin-1").split(","):
        name, _, argument = item.partition("=")
        name = name.strip().lower()
        if name:
            directives[name] = argument.strip().strip('"')
    return directives


def _seconds(text: str) -> float | None:
    text = text.strip()
    return float(int(text)) if text.isdigit() else None


def _expires_in(value: bytes, now: float) -> float:
    try:
        moment = email.utils.parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return 0.0
    if moment is None or moment.tzinfo is None:
        return 0.0
    return moment.timestamp() - now


def compile_policy(value: Any, issues: Issues) -> CachePolicy | None:
    """The policy of a block with every problem reported to `issues`; None when disabled or unusable."""
    if not isinstance(value, dict):
        issues.add("", 'Must be an object (or null for no caching), like {"ttl_s": 60}.')
        return None
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        issues.add("enabled", "Must be true or false.")
    ttl = _number(value, "ttl_s", 0, 31_536_000, DEFAULT_TTL_S, issues)
    stale = _number(value, "stale_if_error_s", 0, 604_800, 0, issues)
    wait = _number(value, "coalesce_wait_s", 0.01, 600, 10, issues)
    max_body = _number(value, "max_body_bytes", 1, MAX_BODY_LIMIT, DEFAULT_MAX_BODY, issues, whole=True)
    flags = {}
    for key, default in (("store_set_cookie", False), ("coalesce", True)):
        flag = value.get(key, default)
        if not isinstance(flag, bool):
            issues.add(key, "Must be true or false.")
            flag = default
        flags[key] = flag
    vary: tuple[bytes, ...] = ()
    if value.get("vary_headers") is not None:
        names = value["vary_headers"]
        if not isinstance(names, list) or any(not isinstance(n, str) or not TOKEN.match(n) for n in names):
            issues.add("vary_headers", 'Must be a list of request header names, like ["Accept-Language"].')
        else:
            vary = tuple(dict.fromkeys(n.lower().encode("ascii") for n in names))
    methods = frozenset({"GET", "HEAD"})
    if value.get("methods") is not None:
        listed = value["methods"]
        if not isinstance(listed, list) or not listed or any(
                not isinstance(m, str) or m.upper() not in ("GET", "HEAD") for m in listed):
            issues.add("methods", 'Must be a non-empty list of "GET" and "HEAD" (only they are cached).')
        else:
            methods = frozenset(m.upper() for m in listed)
    statuses = DEFAULT_STATUSES
    if value.get("statuses") is not None:
        listed = value["statuses"]
        if not isinstance(listed, list) or not listed or any(
                isinstance(s, bool) or not isinstance(s, int) or not 200 <= s <= 599 or s in (206, 304)
                for s in listed):
            issues.add("statuses", "Must be a non-empty list of status codes from 200 to 599 (not 206 or 304).")
        else:
            statuses = frozenset(listed)
    if not enabled or issues:
        return None
    return CachePolicy(ttl, vary, flags["store_set_cookie"], stale, int(max_body), methods, statuses,
                       flags["coalesce"], wait)


def _number(block: dict[str, Any], key: str, low: float, high: float, default: float, issues: Issues,
            whole: bool = False) -> float:
    value = block.get(key)
    if value is None:
        return default
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        word = "whole number" if whole else "number"
        issues.add(key, f"Must be a {word} from {_plain(low)} to {_plain(high)}.")
        return default
    return float(value)


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


__all__ = ["DEFAULT_STATUSES", "KEYS", "CachePolicy", "Freshness", "compile_policy", "parse_cache_control"]
