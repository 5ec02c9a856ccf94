"""RequestTransform: a route's `request_transformation` block compiled once, applied to each request going upstream."""
from __future__ import annotations

import re
from typing import Any

from protocols.block_errors import Issues, join
from protocols.transform import body, headers, query
from protocols.transform.regex import Template, compile_safe, compile_template, expand

Headers = list[tuple[bytes, bytes]]
# The earlier gateway's keys, then Rusta's.
KEYS = frozenset({"headers", "path", "query_params", "body", "max_body_bytes"})
_PATH_LITERAL = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$")


class PathRule:
    """`{"pattern": "^/api/v1/(.+)$", "replacement": "/$1"}`: the first match in the path is replaced."""

    __slots__ = ("regex", "template")

    def __init__(self, regex: re.Pattern[str], template: Template) -> None:
        self.regex = regex
        self.template = template

    def apply(self, path: str) -> str:
        return self.regex.sub(lambda match: expand(self.template, match), path, count=1)


def max_body_bytes(block: dict[str, Any], issues: Issues) -> int:
    value = block.get("max_body_bytes")
    if value is None:
        return body.DEFAULT_MAX_BODY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= body.MAX_BODY_LIMIT:
        issues.add("max_body_bytes", f"Must be a whole number from 1 to {body.MAX_BODY_LIMIT} (bytes).")
        return body.DEFAULT_MAX_BODY
    return value


def block_of(value: Any, issues: Issues) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        issues.add("", "Must be an object or null.")
        return {}
    return value


def body_applies(headers_: Headers, limit: int, length: int | None = None) -> bool:
    """Whether a body with these fields is one the JSON rules edit: JSON, not encoded, not over the cap (a body
    of unknown length is read up to the cap, and sent untouched if it turns out longer). `length` is the
    Content-Length when the caller took it out of `headers_`."""
    if not body.is_json(headers_):
        return False
    if length is None:
        length = body.content_length(headers_)
    return length is None or length <= limit


class RequestTransform:
    """What changes on the way upstream: headers, the path (after `{param}` substitution), the query, a JSON body.

    Unknown keys of the block are not errors here (the control plane reports them by path); every value of a
    known key must compile, or `from_config` raises BlockError naming each problem.
    """

    __slots__ = ("header_ops", "path_rules", "query_ops", "body_ops", "max_body_bytes")

    def __init__(self, header_ops: tuple[headers.HeaderOp, ...] = (), path_rules: tuple[PathRule, ...] = (),
                 query_ops: tuple[query.QueryOp, ...] = (), body_ops: tuple[body.BodyOp, ...] = (),
                 max_body_bytes: int = body.DEFAULT_MAX_BODY) -> None:
        self.header_ops = header_ops
        self.path_rules = path_rules
        self.query_ops = query_ops
        self.body_ops = body_ops
        self.max_body_bytes = max_body_bytes

    @classmethod
    def from_config(cls, value: Any) -> RequestTransform:
        issues = Issues()
        block = block_of(value, issues)
        header_ops = headers.compile_headers(block.get("headers"), "headers", issues, headers.REQUEST_OWNED)
        path_rules = _compile_path(block.get("path"), issues)
        query_ops = query.compile_query(block.get("query_params"), "query_params", issues)
        body_ops = body.compile_body(block.get("body"), "body", issues)
        limit = max_body_bytes(block, issues)
        issues.raise_if_any()
        return cls(header_ops, path_rules, query_ops, body_ops, limit)

    @property
    def is_empty(self) -> bool:
        return not (self.header_ops or self.path_rules or self.query_ops or self.body_ops)

    def apply_headers(self, fields: Headers) -> Headers:
        """The client's end-to-end fields (lower-case names) as they should go upstream; a new list."""
        for op in self.header_ops:
            fields = op(fields)
        return fields

    def apply_path(self, path: str) -> str:
        """The upstream path (already with `{param}`s filled in) after the rewrite rules, in order."""
        for rule in self.path_rules:
            path = rule.apply(path)
        if not path.startswith("/"):
            path = "/" + path
        return path

    def apply_query(self, raw: bytes) -> bytes:
        """The raw query string (without `?`) after the parameter rules."""
        if not self.query_ops:
            return raw
        return query.apply(self.query_ops, raw)

    @property
    def wants_body(self) -> bool:
        return bool(self.body_ops)

    def body_applies(self, fields: Headers, length: int | None = None) -> bool:
        """Whether the request body with these fields should be read (up to `max_body_bytes`) for `apply_json`;
        `length`: the Content-Length, when `fields` no longer hold it (RequestHead.forward does not)."""
        return bool(self.body_ops) and body_applies(fields, self.max_body_bytes, length)

    def apply_json(self, data: bytes) -> bytes:
        """The edited body; the same bytes when it is not JSON, over the cap, or no rule changed anything."""
        if not self.body_ops or len(data) > self.max_body_bytes:
            return data
        return body.apply(self.body_ops, data)


def _compile_path(value: Any, issues: Issues) -> tuple[PathRule, ...]:
    if value is None:
        return ()
    rules = value if isinstance(value, list) else [value]
    compiled = []
    for index, rule in enumerate(rules):
        where = join("path", index) if isinstance(value, list) else "path"
        if not isinstance(rule, dict):
            issues.add(where, 'Must be an object like {"pattern": "^/api/v1/(.+)$", "replacement": "/$1"}.')
            continue
        for key in rule:
            if key not in ("pattern", "replacement") and not str(key).startswith("_"):
                issues.add(join(where, str(key)), "Unknown key; a path rule has pattern and replacement.")
        try:
            regex = compile_safe(rule.get("pattern"))
        except ValueError as exc:
            issues.add(join(where, "pattern"), str(exc))
            continue
        replacement = rule.get("replacement")
        try:
            template = compile_template(replacement, regex)
        except ValueError as exc:
            issues.add(join(where, "replacement"), str(exc))
            continue
        if not all(_PATH_LITERAL.match(part) for part in template if isinstance(part, str)):
            issues.add(join(where, "replacement"),
                       "May hold only path characters (letters, digits, -._~!$&'()*+,;=:@%/) and $groups; "
                       "no '?', '#', spaces or line breaks.")
            continue
        compiled.append(PathRule(regex, template))
    return tuple(compiled)
