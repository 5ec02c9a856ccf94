"""JSON body rules: add (when absent), set, remove or rename a field by dotted path (`user.address.city`;
a number picks a list item: `items.0.id`).

Only a body that is JSON by its Content-Type (`application/json`, `+json`), not content-encoded, and within
the size cap is parsed; any other body goes through untouched, and so does one that fails to parse. A body
that no rule changed is sent as it came (same bytes); a changed one is re-serialised compactly.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from protocols.block_errors import Issues, join
from protocols.transform.rules import Entry, read_entries

Headers = list[tuple[bytes, bytes]]
# Each operation changes the document in place and says whether it changed anything.
BodyOp = Callable[[Any], bool]

ACTIONS = ("add", "set", "remove", "rename")
RULE_KEYS = frozenset({"path", "value", "to"})
DEFAULT_MAX_BODY = 1 << 20
MAX_BODY_LIMIT = 16 << 20
_MISSING = object()


def compile_body(value: Any, path: str, issues: Issues) -> tuple[BodyOp, ...]:
    ops: list[BodyOp] = []
    for entry in read_entries(value, path, issues, actions=ACTIONS, target="path", known=RULE_KEYS):
        op = _compile(entry, issues)
        if op is not None:
            ops.append(op)
    return tuple(ops)


def _segments(entry: Entry, key: str, issues: Issues) -> tuple[str, ...] | None:
    text = entry.fields.get(key)
    if not isinstance(text, str) or not text or len(text) > 512 or any(not part for part in text.split(".")):
        issues.add(join(entry.path, key), "Must be a dotted field path like \"user.name\" or \"items.0.id\".")
        return None
    return tuple(text.split("."))


def _compile(entry: Entry, issues: Issues) -> BodyOp | None:
    segments = _segments(entry, "path", issues)
    if entry.action == "remove":
        return _remove(segments) if segments else None
    if entry.action == "rename":
        to = _segments(entry, "to", issues)
        if not segments or not to:
            return None
        return _rename(segments, to) if to != segments else None
    if "value" not in entry.fields:
        issues.add(join(entry.path, "value"), f"A {entry.action} rule needs a value (any JSON, null included).")
        return None
    if not segments:
        return None
    return _put(segments, entry.fields["value"], only_if_absent=entry.action == "add")


def _parent(document: Any, segments: tuple[str, ...], create: bool) -> Any:
    node = document
    for segment in segments[:-1]:
        child = _get(node, segment)
        if child is _MISSING and create and isinstance(node, dict):
            child = node[segment] = {}
        if child is _MISSING or not isinstance(child, (dict, list)):
            return _MISSING
        node = child
    return node


def _get(node: Any, segment: str) -> Any:
    if isinstance(node, dict):
        return node.get(segment, _MISSING)
    if isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
        return node[int(segment)]
    return _MISSING


def _put(segments: tuple[str, ...], value: Any, only_if_absent: bool) -> BodyOp:
    def put(document: Any) -> bool:
        parent = _parent(document, segments, create=True)
        last = segments[-1]
        if isinstance(parent, dict):
            if only_if_absent and last in parent:
                return False
            parent[last] = copy.deepcopy(value)
            return True
        if isinstance(parent, list) and last.isdigit() and int(last) < len(parent) and not only_if_absent:
            parent[int(last)] = copy.deepcopy(value)
            return True
        return False
    return put


def _take(document: Any, segments: tuple[str, ...]) -> Any:
    parent = _parent(document, segments, create=False)
    last = segments[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    return _MISSING


def _remove(segments: tuple[str, ...]) -> BodyOp:
    def remove(document: Any) -> bool:
        return _take(document, segments) is not _MISSING
    return remove


def _rename(segments: tuple[str, ...], to: tuple[str, ...]) -> BodyOp:
    def rename(document: Any) -> bool:
        value = _take(document, segments)
        if value is _MISSING:
            return False
        parent = _parent(document, to, create=True)
        if isinstance(parent, dict):
            parent[to[-1]] = value
        return True
    return rename


def is_json(headers: Headers) -> bool:
    """JSON by Content-Type and not content-encoded (a gzip body cannot be edited without decoding it)."""
    json_type = False
    for name, value in headers:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            json_type = media == b"application/json" or media.endswith(b"+json")
        elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return False
    return json_type


def content_length(headers: Headers) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def apply(ops: tuple[BodyOp, ...], body: bytes) -> bytes:
    """The body with the rules applied, or the same bytes when it is not JSON or nothing changed."""
    try:
        document = json.loads(body)
    except ValueError:  # not JSON after all (or not UTF-8): sent as it came
        return body
    changed = False
    for op in ops:
        changed = op(document) or changed
    if not changed:
        return body
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
