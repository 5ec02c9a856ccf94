"""CORS: which origins may read a route's answers, and the gateway's own answer to preflight requests.

Origins are matched without regular expressions: exact origins by a set lookup, wildcard ones
(`https://*.example.com`, `http://localhost:*`) by a suffix and port comparison, so a hostile Origin costs a
string comparison, never backtracking. The result per origin is remembered (a bounded dict).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocols.guards.config import BlockReader
from protocols.guards.refusals import CorsRejected

Headers = list[tuple[bytes, bytes]]

KEYS = frozenset({"enabled", "origins", "methods", "headers", "exposed_headers", "credentials", "max_age"})
DEFAULT_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE")
DEFAULT_MAX_AGE = 600
MAX_MAX_AGE = 86_400
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9\-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]*[a-z0-9])?)*)$")
_CACHE_LIMIT = 4096

_ACAO = b"access-control-allow-origin"
_ACAC = b"access-control-allow-credentials"
_ACEH = b"access-control-expose-headers"
_ACAM = b"access-control-allow-methods"
_ACAH = b"access-control-allow-headers"
_ACMA = b"access-control-max-age"
# A backend's own CORS fields are removed when the gateway owns CORS for the route, so there is one answer.
CORS_RESPONSE_FIELDS = frozenset({_ACAO, _ACAC, _ACEH, _ACAM, _ACAH, _ACMA})
_VARY_ORIGIN = (b"vary", b"Origin")
_VARY_PREFLIGHT = (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers")


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """`scheme://*.suffix[:port]` or `scheme://host:*`: one wildcard origin, pre-split."""

    scheme: str
    host: str  # exact host, or "" when `suffix` is used
    suffix: str  # ".example.com" for "*.example.com"
    port: str  # "" (none), "*" (any) or digits

    def matches(self, scheme: str, host: str, port: str) -> bool:
        if scheme != self.scheme or (self.port != "*" and port != self.port):
            return False
        if self.suffix:
            return host.endswith(self.suffix) and len(host) > len(self.suffix)
        return host == self.host


def split_origin(origin: str) -> tuple[str, str, str] | None:
    """`https://app.example.com:8443` -> ("https", "app.example.com", "8443"); None when it is not an origin."""
    scheme, sep, rest = origin.partition("://")
    if not sep or not rest or "/" in rest or "@" in rest or "?" in rest or "#" in rest:
        return None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return None
        host, tail = rest[: end + 1], rest[end + 1 :]
        if tail and not tail.startswith(":"):
            return None
        port = tail[1:]
    else:
        host, _, port = rest.partition(":")
    if ":" in port:
        return None
    return scheme, host, port


def preflight_method(method: str, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The method a CORS preflight asks about (`Access-Control-Request-Method`), or None if it is not a preflight.

    A preflight is an OPTIONS request with Origin and Access-Control-Request-Method (Fetch standard). The proxy
    matches a preflight's route with this method, since the route usually does not list OPTIONS.
    """
    if method != "OPTIONS":
        return None
    requested = None
    has_origin = False
    for name, value in headers:
        if name == b"origin":
            has_origin = True
        elif name == b"access-control-request-method":
            requested = value.decode("latin-1").strip()
    return requested if has_origin and requested and _TOKEN.match(requested) else None


class CorsPolicy:
    """A compiled `cors` block."""

    __slots__ = ("any_origin", "exact", "patterns", "methods", "allow_methods", "headers", "allow_headers",
                 "exposed", "credentials", "max_age", "_known")

    def __init__(self, *, origins: list[str], methods: Iterable[str] = DEFAULT_METHODS,
                 headers: list[str] | None = None, exposed_headers: Iterable[str] = (), credentials: bool = False,
                 max_age: int = DEFAULT_MAX_AGE) -> None:
        self.any_origin = "*" in origins
        exact: set[str] = set()
        patterns: list[OriginPattern] = []
        for origin in origins:
            if origin == "*":
                continue
            pattern = _parse_pattern(origin)
            if pattern is None:
                raise ValueError(f"not an origin pattern: {origin!r}")
            if pattern.suffix or pattern.port == "*":
                patterns.append(pattern)
            else:
                port = f":{pattern.port}" if pattern.port else ""
                exact.add(f"{pattern.scheme}://{pattern.host}{port}")
        self.exact = frozenset(exact)
        self.patterns = tuple(patterns)
        self.methods = frozenset(m.upper() for m in methods)
        ordered = [m for m in DEFAULT_METHODS if m in self.methods] + sorted(self.methods - set(DEFAULT_METHODS))
        self.allow_methods = ", ".join(ordered).encode()
        # None: reflect what the preflight asks for (Kong's default); "*": any header, also reflected, because a
        # literal "*" is not honoured by browsers on credentialed requests.
        wildcard = headers is not None and "*" in headers
        self.headers = None if headers is None or wildcard else frozenset(h.lower() for h in headers)
        self.allow_headers = b", ".join(h.encode() for h in headers) if self.headers is not None and headers else b""
        self.exposed = ", ".join(exposed_headers).encode()
        self.credentials = credentials
        self.max_age = max_age
        self._known: dict[str, bool] = {}

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> CorsPolicy | None:
        """The compiled block, or None when it is absent or `enabled: false`; raises BlockError."""
        reader = BlockReader(block, KEYS)
        enabled = reader.boolean("enabled", True)
        origins = reader.strings("origins", []) or []
        for index, origin in enumerate(origins):
            problem = origin_problem(origin)
            if problem:
                reader.add(f"origins[{index}]", problem)
        if enabled and block is not None and not origins:
            reader.add("origins", 'List the origins allowed, like ["https://app.example.com"] (or ["*"]).')
        methods = reader.strings("methods", list(DEFAULT_METHODS)) or []
        for index, method in enumerate(methods):
            if not _TOKEN.match(method) or method != method.upper():
                reader.add(f"methods[{index}]", "Must be an HTTP method in upper case, like \"GET\".")
        headers = reader.strings("headers", None)
        exposed = reader.strings("exposed_headers", []) or []
        for key, names in (("headers", headers or []), ("exposed_headers", exposed)):
            for index, name in enumerate(names):
                if name != "*" and not _TOKEN.match(name):
                    reader.add(f"{key}[{index}]", "Must be a header name (letters, digits and -), or \"*\".")
        credentials = reader.boolean("credentials", False)
        if credentials and "*" in origins:
            # Reflecting any origin with credentials lets every web page read the user's data with their cookies.
            reader.add("origins", 'With "credentials": true, list the origins: "*" would let any site read '
                                  "answers made with the user's cookies.")
        max_age = reader.integer("max_age", DEFAULT_MAX_AGE, 0, MAX_MAX_AGE)
        reader.finish()
        if not enabled or block is None:
            return None
        return cls(origins=origins, methods=methods, headers=headers, exposed_headers=exposed,
                   credentials=credentials, max_age=max_age)

    # --- Per request ---------------------------------------------------------------------------------------

    def allows(self, origin: str) -> bool:
        """Whether this Origin value may read the route's answers."""
        if self.any_origin:
            return True
        known = self._known.get(origin)
        if known is None:
            known = self._match(origin)
            if len(self._known) >= _CACHE_LIMIT:
                self._known.clear()
            self._known[origin] = known
        return known

    def _match(self, origin: str) -> bool:
        lowered = origin.lower()
        if lowered in self.exact:
            return True
        if not self.patterns:
            return False
        parts = split_origin(lowered)
        if parts is None:
            return False
        return any(pattern.matches(*parts) for pattern in self.patterns)

    def response_headers(self, origin: bytes) -> Headers:
        """The CORS fields of an actual (not preflight) response for this Origin (b"" when the request had none).

        A disallowed origin gets no CORS field (the browser then hides the answer), only `Vary: Origin` so that
        caches keep answers for different origins apart.
        """
        if self.any_origin and not self.credentials:
            out = [(_ACAO, b"*")]
            if self.exposed:
                out.append((_ACEH, self.exposed))
            return out
        if not origin or not self.allows(origin.decode("latin-1")):
            return [_VARY_ORIGIN]
        out = [(_ACAO, origin)]
        if self.credentials:
            out.append((_ACAC, b"true"))
        if self.exposed:
            out.append((_ACEH, self.exposed))
        out.append(_VARY_ORIGIN)
        return out

    def preflight(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[int, Headers] | None:
        """204 and the preflight's answer fields, or None if the request is not a preflight; raises CorsRejected
        (403) when the origin, the method or a requested header is not allowed."""
        origin = b""
        method = b""
        requested = b""
        for name, value in headers:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                method = value.strip()
            elif name == b"access-control-request-headers":
                requested = value if not requested else requested + b"," + value
        if not origin or not method:
            return None
        vary = [_VARY_PREFLIGHT]
        text = origin.decode("latin-1")
        if not self.allows(text):
            raise CorsRejected(f"origin {text} is not allowed", vary)
        method_text = method.decode("latin-1")
        if method_text not in self.methods:
            raise CorsRejected(f"method {method_text} is not allowed", vary)
        names = [n.strip() for n in requested.decode("latin-1").split(",") if n.strip()]
        for field in names:
            if not _TOKEN.match(field):
                raise CorsRejected("Access-Control-Request-Headers is not a list of header names", vary)
            if self.headers is not None and field.lower() not in self.headers:
                raise CorsRejected(f"header {field} is not allowed", vary)
        out = [(_ACAO, b"*" if self.any_origin and not self.credentials else origin)]
        if self.credentials:
            out.append((_ACAC, b"true"))
        out.append((_ACAM, self.allow_methods))
        if self.headers is None:
            if names:
                out.append((_ACAH, ", ".join(names).encode()))
        elif self.allow_headers:
            out.append((_ACAH, self.allow_headers))
        if self.max_age:
            out.append((_ACMA, b"%d" % self.max_age))
        out.append(vary[0])
        return 204, out


def origin_problem(origin: str) -> str | None:
    """Why an `origins` entry cannot be used, or None."""
    if origin == "*":
        return None
    if origin.lower() == "null":
        # Sandboxed frames and file: pages all send "null": allowing it allows all of them.
        return "\"null\" cannot be allowed: sandboxed frames and local files all send it."
    if _parse_pattern(origin) is None:
        return ("Must be an origin like \"https://app.example.com\", \"https://*.example.com\" or "
                "\"http://localhost:*\" (scheme and host, an optional port, no path or trailing slash).")
    return None


def _parse_pattern(origin: str) -> OriginPattern | None:
    parts = split_origin(origin.strip().lower())
    if parts is None:
        return None
    scheme, host, port = parts
    if not _SCHEME.match(scheme) or (port and port != "*" and not (port.isdigit() and 0 < int(port) < 65536)):
        return None
    suffix = ""
    if host.startswith("*."):
        suffix, host = host[1:], ""
        if not _HOST.match(suffix[1:]):
            return None
    elif not _HOST.match(host):
        return None
    return OriginPattern(scheme, host, suffix, port)
