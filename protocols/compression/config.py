"""CompressionPolicy: a route's `compression` block compiled once, and the per-response decision (`start`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocols.block_errors import Issues, compiled
from protocols.compression.encoders import AVAILABLE, BrotliEncoder, Encoder, GzipEncoder, ZstdEncoder
from protocols.compression.negotiate import choose

Headers = list[tuple[bytes, bytes]]
KEYS = frozenset({"enabled", "algorithms", "content_types", "min_bytes", "gzip_level", "brotli_quality",
                  "zstd_level"})
CODINGS = ("br", "zstd", "gzip")
DEFAULT_CONTENT_TYPES = (
    "text/*", "application/json", "application/*+json", "application/javascript", "application/xml",
    "application/*+xml", "image/svg+xml",
)
DEFAULT_MIN_BYTES = 1024
_LEVELS = {"gzip_level": (1, 9, 6), "brotli_quality": (0, 11, 4), "zstd_level": (1, 19, 3)}
_NO_BODY_STATUSES = frozenset({204, 205, 206, 304})
_VARY_VALUE = b"Accept-Encoding"


@dataclass(frozen=True, slots=True)
class CompressionPolicy:
    """Which responses are compressed and how. `algorithms` is the server's preference among codings the client
    accepts equally; codings whose library is not installed are dropped (zstd needs `zstandard`)."""

    algorithms: tuple[str, ...] = tuple(c for c in CODINGS if c in AVAILABLE)
    exact_types: frozenset[bytes] = frozenset()
    prefix_types: tuple[bytes, ...] = ()
    suffix_types: tuple[bytes, ...] = ()
    min_bytes: int = DEFAULT_MIN_BYTES
    gzip_level: int = 6
    brotli_quality: int = 4
    zstd_level: int = 3
    enabled: bool = True
    content_types: tuple[str, ...] = field(default=DEFAULT_CONTENT_TYPES)

    @classmethod
    def from_config(cls, value: Any) -> CompressionPolicy | None:
        """The policy of a block; None when the block is null or disabled (the route never compresses)."""
        policy = compiled(compile_policy, value)
        return policy if policy is not None and policy.enabled else None

    def compressible_type(self, content_type: bytes) -> bool:
        media = content_type.split(b";", 1)[0].strip().lower()
        if media in self.exact_types:
            return True
        if any(media.startswith(prefix) for prefix in self.prefix_types):
            return True
        return any(media.endswith(suffix) and media.startswith(prefix) for prefix, suffix in
                   (s.split(b"*", 1) for s in self.suffix_types))

    def encoder(self, coding: str) -> Encoder:
        if coding == "br":
            return BrotliEncoder(self.brotli_quality)
        if coding == "zstd":
            return ZstdEncoder(self.zstd_level)
        return GzipEncoder(self.gzip_level)

    def start(self, method: str, status: int, headers: Headers,
              accept_encoding: bytes | None) -> tuple[Encoder | None, Headers]:
        """Decide for one response, from its head: (encoder or None, the head to send).

        Compresses when the type is configured, the body is not known to be below `min_bytes`, nothing encoded
        it already, the status carries a full body, the method is not HEAD, `Cache-Control: no-transform` is
        absent and the client accepts a coding. Then Content-Encoding is set, Content-Length removed (the
        server frames the body) and a strong ETag made weak. `Vary: Accept-Encoding` is added to every
        response of a compressible type, compressed or not, so shared caches keep the variants apart.
        """
        content_type = b""
        length: int | None = None
        for name, value in headers:
            if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                return None, headers  # never compress twice; the backend's Vary is its own business
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"cache-control" and b"no-transform" in value.lower():
                return None, headers
            elif name == b"content-range":
                return None, headers
        if status < 200 or status in _NO_BODY_STATUSES or not content_type or not self.compressible_type(
                content_type):
            return None, headers
        headers = _with_vary(headers)
        if method == "HEAD" or (length is not None and length < self.min_bytes):
            return None, headers
        coding = choose(accept_encoding, self.algorithms)
        if coding is None:
            return None, headers
        encoder = self.encoder(coding)
        out: Headers = []
        for name, value in headers:
            if name == b"content-length":
                continue
            if name == b"etag" and not value.startswith(b"W/"):
                value = b"W/" + value  # the bytes differ from the identity representation's
            out.append((name, value))
        out.append((b"content-encoding", encoder.coding))
        return encoder, out


def _with_vary(headers: Headers) -> Headers:
    for index, (name, value) in enumerate(headers):
        if name == b"vary":
            tokens = {token.strip().lower() for token in value.split(b",")}
            if b"*" in tokens or b"accept-encoding" in tokens:
                return headers
            updated = list(headers)
            updated[index] = (name, value + b", " + _VARY_VALUE)
            return updated
    return [*headers, (b"vary", _VARY_VALUE)]


def compile_policy(value: Any, issues: Issues) -> CompressionPolicy | None:
    """The policy of a block, with every problem reported to `issues` (unknown keys are the caller's)."""
    if not isinstance(value, dict):
        issues.add("", "Must be an object (or null for no compression), like {\"enabled\": true}.")
        return None
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        issues.add("enabled", "Must be true or false.")
        enabled = True
    algorithms: tuple[str, ...] = tuple(c for c in CODINGS if c in AVAILABLE)
    if value.get("algorithms") is not None:
        listed = value["algorithms"]
        if not isinstance(listed, list) or not listed or any(item not in CODINGS for item in listed):
            issues.add("algorithms", f"Must be a non-empty list of: {', '.join(CODINGS)} (in order of preference).")
        else:
            algorithms = tuple(dict.fromkeys(item for item in listed if item in AVAILABLE))
    types = DEFAULT_CONTENT_TYPES
    if value.get("content_types") is not None:
        listed = value["content_types"]
        if not isinstance(listed, list) or not listed or not all(_valid_type(item) for item in listed):
            issues.add("content_types", 'Must be a non-empty list of media types like "text/*", '
                                        '"application/json" or "application/*+json".')
        else:
            types = tuple(item.lower() for item in listed)
    min_bytes = _int(value, "min_bytes", 0, 1 << 30, DEFAULT_MIN_BYTES, issues)
    levels = {key: _int(value, key, low, high, default, issues) for key, (low, high, default) in _LEVELS.items()}
    exact, prefixes, suffixes = _split_types(types)
    return CompressionPolicy(algorithms, exact, prefixes, suffixes, min_bytes, levels["gzip_level"],
                             levels["brotli_quality"], levels["zstd_level"], enabled, types)


def _valid_type(item: Any) -> bool:
    if not isinstance(item, str) or item.count("/") != 1 or len(item) > 200:
        return False
    major, minor = item.split("/")
    return bool(major) and bool(minor) and major != "*" and minor.count("*") <= 1 and (
        minor == "*" or "*" not in minor or minor.startswith("*"))


def _split_types(types: tuple[str, ...]) -> tuple[frozenset[bytes], tuple[bytes, ...], tuple[bytes, ...]]:
    exact, prefixes, suffixes = set(), [], []
    for item in types:
        major, minor = item.encode("ascii", "replace").split(b"/")
        if minor == b"*":
            prefixes.append(major + b"/")
        elif minor.startswith(b"*"):
            suffixes.append(major + b"/*" + minor[1:])  # "application/*+json": prefix and suffix
        else:
            exact.add(major + b"/" + minor)
    return frozenset(exact), tuple(prefixes), tuple(suffixes)


def _int(block: dict[str, Any], key: str, low: int, high: int, default: int, issues: Issues) -> int:
    value = block.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        issues.add(key, f"Must be a whole number from {low} to {high}.")
        return default
    return value


def _default_policy() -> CompressionPolicy:
    policy = compile_policy({}, Issues())
    assert policy is not None, "an empty block is a valid one"
    return policy


DEFAULT_POLICY = _default_policy()
__all__ = ["DEFAULT_POLICY", "KEYS", "CompressionPolicy", "compile_policy"]
