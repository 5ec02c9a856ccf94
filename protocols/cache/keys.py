"""Cache keys: what makes two requests the same for the cache.

    base key     "{route}|{METHOD} {host}{path}?{query}|{h}"
    variant key  "{base key}|{v}"   when the stored answer had a `Vary` field

The method is GET for HEAD (a HEAD is answered from the GET's entry). The query keeps every parameter, sorted
by decoded name; parameters of the same name keep their order (`a=2&a=1` may mean something else than
`a=1&a=2` to the backend). `h` is a digest of the request's values of the route's `vary_headers` ("-" without
any); `v` a digest of the values of the fields the upstream's `Vary` names, with Accept-Encoding reduced to the
codings accepted, so that `gzip, br` and `br,gzip` share an entry. The middle part, `{METHOD} {host}{path}?q`,
is the "URL key" an operator purges by.
"""
from __future__ import annotations

import hashlib
from urllib.parse import unquote_plus

from protocols.compression.negotiate import parse_accept_encoding

Headers = list[tuple[bytes, bytes]]
MAX_URL_KEY = 4096  # longer URLs are not cached: a key is held in memory or Redis as is


def url_key(method: str, host: str, path: str, query: bytes) -> str:
    """`GET example.com/items?a=1&b=2`: the part of a key an operator names when purging one URL."""
    method = "GET" if method == "HEAD" else method
    text = f"{method} {host}{path}"
    if query:
        pieces = [piece for piece in query.split(b"&") if piece]
        pieces.sort(key=lambda piece: unquote_plus(piece.split(b"=", 1)[0].decode("latin-1")))
        if pieces:
            text += "?" + b"&".join(pieces).decode("latin-1")
    return text


def parse_url_key(text: str) -> str:
    """An operator's key (`GET example.com/a?b=1`, or without the method, or a full URL) in url_key's form."""
    text = text.strip()
    method, _, rest = text.partition(" ")
    if not rest:
        method, rest = "GET", text
    for scheme in ("http://", "https://"):
        if rest.lower().startswith(scheme):
            rest = rest[len(scheme):]
    host, slash, path_query = rest.partition("/")
    path, _, query = ("/" + path_query if slash else "/").partition("?")
    host = host.lower().rsplit(":", 1)[0] if not host.endswith("]") else host.lower()
    return url_key(method.upper(), host, path, query.encode("latin-1"))


def _values(headers: Headers, names: tuple[bytes, ...]) -> bytes:
    parts = []
    for name in names:
        values = [value for field, value in headers if field == name]
        if name == b"accept-encoding":
            values = [_accepted_codings(b", ".join(values))]
        parts.append(name + b"=" + b"\x00".join(values))
    return b"\x01".join(parts)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=10).hexdigest()


def _accepted_codings(value: bytes) -> bytes:
    weights = parse_accept_encoding(value)
    return b",".join(sorted(coding.encode("latin-1") for coding, weight in weights.items() if weight > 0))


def base_key(route: str, url: str, headers: Headers, vary_headers: tuple[bytes, ...]) -> str:
    part = _digest(_values(headers, vary_headers)) if vary_headers else "-"
    return f"{route}|{url}|{part}"


def variant_key(base: str, headers: Headers, vary: tuple[bytes, ...]) -> str:
    return f"{base}|{_digest(_values(headers, vary))}"


def vary_names(headers: Headers) -> tuple[bytes, ...]:
    """The request fields an upstream response's `Vary` names, lower-case, sorted (empty without Vary)."""
    names: set[bytes] = set()
    for name, value in headers:
        if name == b"vary":
            names.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return tuple(sorted(names))
