"""The fields of an OpenAPI schema, flattened: what the drift report and the document comparison read.

A field is named by its path in the JSON body: `name`, `backends[]` (an array's items), `backends[].host`, and
`[].name` for the items of a top-level array. `$ref`s into the document's components are followed, `allOf` is
merged, `oneOf`/`anyOf` alternatives add up. A free-form object (no `properties`: a JSONField, a DictField) is
marked `free`: what lies under it is not described.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 12
JSON_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "object", "array"})


@dataclass
class Field:
    """One field: its JSON types, whether its object requires it, and whether it is a free-form object."""

    types: set[str] = field(default_factory=set)
    required: bool = False
    free: bool = False
    read_only: bool = False
    write_only: bool = False


def resolve(schema: Any, document: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A schema with its `$ref` followed and its `allOf` parts merged (a cycle or a broken ref: {})."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in seen or not ref.startswith("#/"):
            return {}
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        merged = resolve(target, document, (*seen, ref))
        return {**merged, **{k: v for k, v in schema.items() if k != "$ref"}}
    parts = schema.get("allOf")
    if isinstance(parts, list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            one = resolve(part, document, seen)
            properties = {**merged.get("properties", {}), **one.get("properties", {})}
            required = [*merged.get("required", []), *one.get("required", [])]
            merged = {**one, **merged, "properties": properties, "required": required}
            if not properties:
                merged.pop("properties")
        return merged
    return schema


def types_of(schema: dict[str, Any]) -> set[str]:
    """The JSON types a (resolved) schema allows; {} when it does not say."""
    kind = schema.get("type")
    types = {kind} if isinstance(kind, str) else {t for t in kind if isinstance(t, str)} if isinstance(kind, list) \
        else set()
    if not types and "properties" in schema:
        types = {"object"}
    if not types and "items" in schema:
        types = {"array"}
    if schema.get("nullable") is True:
        types.add("null")
    return types & JSON_TYPES


def walk(schema: Any, document: dict[str, Any]) -> dict[str, Field]:
    """Every field of a body's schema by its path (the body itself is ""), see the module docstring."""
    found: dict[str, Field] = {}
    _walk(schema, document, "", found, True, 0)
    return found


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _walk(schema: Any, document: dict[str, Any], path: str, found: dict[str, Field], required: bool,
          depth: int) -> None:
    schema = resolve(schema, document)
    entry = found.setdefault(path, Field())
    entry.required = entry.required or required
    entry.read_only = entry.read_only or schema.get("readOnly") is True
    entry.write_only = entry.write_only or schema.get("writeOnly") is True
    alternatives = [a for key in ("oneOf", "anyOf") for a in schema.get(key) or [] if isinstance(a, dict)]
    for alternative in alternatives:
        _walk(alternative, document, path, found, required, depth)
    types = types_of(schema)
    entry.types |= types
    if depth >= MAX_DEPTH:
        return
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        needed = set(schema.get("required") or [])
        for name, child in properties.items():
            _walk(child, document, _join(path, name), found, name in needed, depth + 1)
    elif not alternatives and ("object" in types or not (types or "items" in schema)):
        entry.free = True  # an object without properties, or a schema that says nothing: anything goes
    if "items" in schema:
        _walk(schema["items"], document, path + "[]", found, False, depth + 1)


def ancestors(path: str) -> list[str]:
    """The fields a field path lies under, outermost first ("" is the body): `a.b[].c` -> "", a, a.b, a.b[]."""
    found = [""]
    for index, char in enumerate(path):
        if char == ".":
            found.append(path[:index])
        elif char == "[" and path.startswith("[]", index):
            if index:
                found.append(path[:index])
            if index + 2 < len(path):
                found.append(path[:index + 2])
    return list(dict.fromkeys(found))


def under_free(path: str, fields: dict[str, Field]) -> bool:
    """Whether a field path lies under a free-form object of `fields` (so `fields` does not describe it)."""
    return any((entry := fields.get(parent)) is not None and entry.free for parent in ancestors(path))
