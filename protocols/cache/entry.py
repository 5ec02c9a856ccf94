"""What the cache stores: a response (status, head, body, timings) or a Vary spec, and their bytes for Redis.

The Redis form is a small versioned binary layout (never pickle: whoever can write to Redis must not be able
to run code in the gateway): `RC1` + kind (`E` entry, `V` vary spec) + 4-byte length of a JSON head + the head
+ the body.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]
_MAGIC = b"RC1"
_LENGTH = struct.Struct(">I")
# Bytes counted for a stored record besides its body and header bytes (keys, objects): keeps the LRU honest.
OVERHEAD = 256


@dataclass(slots=True)
class CachedResponse:
    """A stored answer as the client saw it (after the response rules, before compression)."""

    status: int
    headers: Headers
    body: bytes
    stored_at: float  # wall clock, seconds
    fresh_until: float
    stale_until: float
    initial_age: float
    route: str
    url: str

    def age(self, now: float) -> int:
        return int(self.initial_age + max(0.0, now - self.stored_at))

    def size(self) -> int:
        return len(self.body) + sum(len(n) + len(v) for n, v in self.headers) + len(self.url) + OVERHEAD

    def header(self, name: bytes) -> bytes | None:
        for field, value in self.headers:
            if field == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class VarySpec:
    """Stored at a base key when the answer had `Vary`: the request fields whose values pick the variant."""

    names: tuple[bytes, ...]
    route: str
    url: str

    def size(self) -> int:
        return sum(len(n) for n in self.names) + len(self.url) + OVERHEAD


Record = CachedResponse | VarySpec


def dumps(record: Record) -> bytes:
    if isinstance(record, VarySpec):
        head = json.dumps({"n": [n.decode("latin-1") for n in record.names], "r": record.route,
                           "u": record.url}).encode()
        return _MAGIC + b"V" + _LENGTH.pack(len(head)) + head
    head = json.dumps({
        "s": record.status, "h": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in record.headers],
        "t": record.stored_at, "f": record.fresh_until, "x": record.stale_until, "a": record.initial_age,
        "r": record.route, "u": record.url,
    }).encode()
    return _MAGIC + b"E" + _LENGTH.pack(len(head)) + head + record.body


def loads(data: bytes) -> Record | None:
    """The record, or None for bytes this version cannot read (a foreign or newer format is a miss)."""
    if len(data) < 8 or data[:3] != _MAGIC:
        return None
    kind = data[3:4]
    (length,) = _LENGTH.unpack_from(data, 4)
    try:
        head = json.loads(data[8:8 + length])
        if kind == b"V":
            return VarySpec(tuple(n.encode("latin-1") for n in head["n"]), head["r"], head["u"])
        if kind == b"E":
            return CachedResponse(
                int(head["s"]), [(n.encode("latin-1"), v.encode("latin-1")) for n, v in head["h"]],
                data[8 + length:], float(head["t"]), float(head["f"]), float(head["x"]), float(head["a"]),
                head["r"], head["u"],
            )
    except (ValueError, KeyError, TypeError):
        return None
    return None
