"""ResponseTransform: a route's `response_transformation` block compiled once, applied to each answer going to the
client: the status mappings (with their conditions), header rules and JSON body rules."""
from __future__ import annotations

from typing import Any

from protocols.block_errors import Issues, join
from protocols.transform import body, headers
from protocols.transform.conditions import Condition, compile_condition
from protocols.transform.request import block_of, body_applies, max_body_bytes

Headers = list[tuple[bytes, bytes]]
KEYS = frozenset({"headers", "status_code_mappings", "body", "max_body_bytes"})
# A mapped status keeps the backend's body, so it must be one that may carry a body.
_NO_BODY = frozenset({204, 205, 304})


class StatusMapping:
    """`{"from": 404, "to": 200, "condition": ...}`; the first mapping whose `from` and condition match wins."""

    __slots__ = ("source", "target", "condition")

    def __init__(self, source: int, target: int, condition: Condition) -> None:
        self.source = source
        self.target = target
        self.condition = condition


class ResponseTransform:
    """What changes on the way back: the status, headers and a JSON body."""

    __slots__ = ("header_ops", "mappings", "mapped_statuses", "body_ops", "max_body_bytes")

    def __init__(self, header_ops: tuple[headers.HeaderOp, ...] = (), mappings: tuple[StatusMapping, ...] = (),
                 body_ops: tuple[body.BodyOp, ...] = (), max_body_bytes: int = body.DEFAULT_MAX_BODY) -> None:
        self.header_ops = header_ops
        self.mappings = mappings
        self.mapped_statuses = frozenset(mapping.source for mapping in mappings)
        self.body_ops = body_ops
        self.max_body_bytes = max_body_bytes

    @classmethod
    def from_config(cls, value: Any) -> ResponseTransform:
        issues = Issues()
        block = block_of(value, issues)
        header_ops = headers.compile_headers(block.get("headers"), "headers", issues, headers.RESPONSE_OWNED)
        mappings = _compile_mappings(block.get("status_code_mappings"), issues)
        body_ops = body.compile_body(block.get("body"), "body", issues)
        limit = max_body_bytes(block, issues)
        issues.raise_if_any()
        return cls(header_ops, mappings, body_ops, limit)

    @property
    def is_empty(self) -> bool:
        return not (self.header_ops or self.mappings or self.body_ops)

    def map_status(self, status: int, method: str, path: str, upstream_headers: Headers) -> int:
        """The status the client gets. `path` is the client's request path; `upstream_headers` are the backend's
        fields as received (before the header rules)."""
        if status not in self.mapped_statuses:
            return status
        for mapping in self.mappings:
            if mapping.source == status and mapping.condition.holds(method, path, upstream_headers):
                return mapping.target
        return status

    def apply_headers(self, fields: Headers) -> Headers:
        for op in self.header_ops:
            fields = op(fields)
        return fields

    @property
    def wants_body(self) -> bool:
        return bool(self.body_ops)

    def body_applies(self, fields: Headers) -> bool:
        """Whether a response with these fields should be buffered (up to `max_body_bytes`) for `apply_json`."""
        return bool(self.body_ops) and body_applies(fields, self.max_body_bytes)

    def apply_json(self, data: bytes) -> bytes:
        if not self.body_ops or len(data) > self.max_body_bytes:
            return data
        return body.apply(self.body_ops, data)


def _status(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _compile_mappings(value: Any, issues: Issues) -> tuple[StatusMapping, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        issues.add("status_code_mappings", 'Must be a list like [{"from": 404, "to": 200}].')
        return ()
    mappings = []
    for index, item in enumerate(value):
        where = join("status_code_mappings", index)
        if not isinstance(item, dict):
            issues.add(where, 'Must be an object like {"from": 404, "to": 200}.')
            continue
        for key in item:
            if key not in ("from", "to", "condition") and not str(key).startswith("_"):
                issues.add(join(where, str(key)), "Unknown key; a mapping has from, to and condition.")
        source = _status(item.get("from"), 100, 599)
        if source is None:
            issues.add(join(where, "from"), "Must be an HTTP status code (100 to 599).")
        target = _status(item.get("to"), 200, 599)
        if target is None or target in _NO_BODY:
            issues.add(join(where, "to"), "Must be a status code from 200 to 599 that may carry a body "
                                          "(not 204, 205 or 304).")
            target = None
        condition = compile_condition(item.get("condition"), join(where, "condition"), issues)
        if source is not None and target is not None:
            mappings.append(StatusMapping(source, target, condition))
    return tuple(mappings)
