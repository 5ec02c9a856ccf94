"""The shape of a JSON value, never the value: JSON types, object keys, array items, string formats, number ranges
and small enums, and how two shapes merge (what the samples of one operation add up to).

A shape is plain JSON (it is stored as is): `{"n": times seen, "types": {type: detail}}`, where the type is one of
null, boolean, integer, number, string, object, array, and its detail counts it (`n`) and holds
- integer, number: `min`, `max`;
- string: `formats` (format -> count, "" for none) and `enum`, the distinct values seen while they are few, short
  and word-like (no digit, no `@`, at most ENUM_MAX_LENGTH characters), else None (never an enum again);
- object: `properties` (key -> shape; a key is required where its `n` equals the object's) and `open` (more keys
  than MAX_KEYS were seen: the rest are not described);
- array: `items`, the shape of every item merged (None for only empty arrays).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

Shape = dict[str, Any]

MAX_DEPTH = 12  # deeper values are described as "object" or "array" without contents
MAX_KEYS = 100  # properties kept per object shape
MAX_KEY_LENGTH = 100
MAX_ITEMS = 50  # items of one array read for its item shape
MAX_ENUM = 5  # distinct values a string field may have and still be an enum
ENUM_MAX_LENGTH = 32
# Property names whose values are never kept, even as enum candidates.
SECRET_WORDS = ("password", "secret", "token", "key", "authorization", "credential", "cookie", "session")

# Field names seen before (never a value-like key): whether each is secret-looking. Reading a key costs a lookup.
MAX_FIELD_NAMES = 10_000
_FIELD_NAMES: dict[str, bool] = {}

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_WORD = re.compile(r"^[A-Za-z_][A-Za-z_ ./-]*$")
_INTEGER = re.compile(r"^-?\d{1,18}$")
_NUMBER = re.compile(r"^-?\d+\.\d+$")


def string_format(text: str) -> str:
    """The OpenAPI format a string has (uuid, date-time, date, email, uri, ipv4, ipv6), "" for none."""
    if len(text) > 2048:
        return ""
    if _UUID.match(text):
        return "uuid"
    if _DATE_TIME.match(text):
        return "date-time"
    if _DATE.match(text):
        return "date"
    if _EMAIL.match(text):
        return "email"
    if _URI.match(text):
        return "uri"
    if _IPV4.match(text):
        try:
            ipaddress.IPv4Address(text)
            return "ipv4"
        except ValueError:
            return ""
    if ":" in text and len(text) <= 45:
        try:
            ipaddress.IPv6Address(text)
            return "ipv6"
        except ValueError:
            return ""
    return ""


def _string(text: str, secret: bool) -> dict[str, Any]:
    fmt = string_format(text)
    candidate = not secret and not fmt and len(text) <= ENUM_MAX_LENGTH and _WORD.match(text) is not None
    return {"n": 1, "formats": {fmt: 1}, "enum": [text] if candidate else None}


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def shape_of(value: Any, depth: int = 0, secret: bool = False) -> Shape:
    """The shape of one JSON value (as json.loads gives it); `secret`: the value of a secret-looking key."""
    return {"n": 1, "types": {_type_name(value): _detail(value, depth, secret)}}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def _detail(value: Any, depth: int, secret: bool) -> dict[str, Any]:
    if value is None or isinstance(value, bool):
        return {"n": 1}
    if isinstance(value, (int, float)):
        return {"n": 1, "min": value, "max": value}
    if isinstance(value, str):
        return _string(value, secret)
    if isinstance(value, dict):
        properties: dict[str, Shape] = {}
        open_ = False
        if depth < MAX_DEPTH:
            for key, item in value.items():
                known = _FIELD_NAMES.get(key)
                if known is None:
                    if _value_like(key):
                        open_ = True
                        continue
                    known = is_secret_name(key)
                    if len(_FIELD_NAMES) < MAX_FIELD_NAMES:
                        _FIELD_NAMES[key] = known
                if len(properties) >= MAX_KEYS:
                    open_ = True
                    continue
                properties[key] = shape_of(item, depth + 1, secret or known)
        return {"n": 1, "properties": properties, "open": open_ or (depth >= MAX_DEPTH and bool(value))}
    items: Shape | None = None
    if depth < MAX_DEPTH:
        for item in value[:MAX_ITEMS]:
            items = merge(items, shape_of(item, depth + 1, secret))
    return {"n": 1, "items": items}


def _value_like(key: str) -> bool:
    """A key that is data rather than a field name (an id, an address, an e-mail): never kept."""
    return len(key) > MAX_KEY_LENGTH or key.isdigit() or bool(string_format(key))


def scalar_shape(text: str, secret: bool = False) -> Shape:
    """The shape of a text value that is not JSON (a query parameter, a path segment): an integer, a number, a
    boolean when it reads as one, else a string with its format."""
    if _INTEGER.match(text):
        return shape_of(int(text))
    if _NUMBER.match(text):
        return shape_of(float(text))
    if text in ("true", "false"):
        return shape_of(text == "true")
    return {"n": 1, "types": {"string": _string(text, secret)}}


def merge(a: Shape | None, b: Shape | None) -> Shape | None:
    """The shape of the values of `a` and of `b` together (a new dict; neither is changed)."""
    if a is None:
        return b
    if b is None:
        return a
    types = dict(a["types"])
    for name, detail in b["types"].items():
        mine = types.get(name)
        types[name] = detail if mine is None else _merge_detail(name, mine, detail)
    return {"n": a["n"] + b["n"], "types": types}


def _merge_detail(name: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    n = a["n"] + b["n"]
    if name in ("integer", "number"):
        return {"n": n, "min": min(a["min"], b["min"]), "max": max(a["max"], b["max"])}
    if name == "string":
        formats = dict(a["formats"])
        for fmt, count in b["formats"].items():
            formats[fmt] = formats.get(fmt, 0) + count
        enum = None
        if a["enum"] is not None and b["enum"] is not None:
            values = sorted(set(a["enum"]) | set(b["enum"]))
            enum = values if len(values) <= MAX_ENUM else None
        return {"n": n, "formats": formats, "enum": enum}
    if name == "object":
        properties = dict(a["properties"])
        open_ = a["open"] or b["open"]
        for key, shape in b["properties"].items():
            if key in properties:
                properties[key] = merge(properties[key], shape)
            elif len(properties) < MAX_KEYS:
                properties[key] = shape
            else:
                open_ = True
        return {"n": n, "properties": properties, "open": open_}
    if name == "array":
        return {"n": n, "items": merge(a["items"], b["items"])}
    return {"n": n}


def body_shape() -> dict[str, Any]:
    """An empty record of the bodies of one side of an operation."""
    return {"n": 0, "content_types": {}, "json": None, "unknown": 0, "invalid": 0}


def merge_body(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two records of bodies merged: content types counted, JSON shapes merged, bodies over the cap (`unknown`)
    and bodies that were not JSON (`invalid`) counted."""
    if a is None:
        return b
    if b is None:
        return a
    types = dict(a["content_types"])
    for name, count in b["content_types"].items():
        types[name] = types.get(name, 0) + count
    return {"n": a["n"] + b["n"], "content_types": types, "json": merge(a["json"], b["json"]),
            "unknown": a["unknown"] + b["unknown"], "invalid": a["invalid"] + b["invalid"]}
