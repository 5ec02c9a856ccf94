"""Header rules (add, set, remove, replace, rename) compiled to a tuple of operations on ASGI header lists.

Names are compared and written in lower case, as ASGI and the upstream client carry them. Each operation
returns a new list and never touches fields it is not about, so their order is kept.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from protocols.block_errors import Issues, join
from protocols.transform.regex import Template, compile_safe, compile_template, expand
from protocols.transform.rules import Entry, read_entries

Headers = list[tuple[bytes, bytes]]
HeaderOp = Callable[[Headers], Headers]

ACTIONS = ("add", "set", "remove", "replace", "rename")
RULE_KEYS = frozenset({"name", "value", "pattern", "replacement", "to"})
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$")
MAX_VALUE = 8192
# Framing and connection management are the proxy's, whatever a rule says.
FRAMING = frozenset({
    "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "upgrade", "proxy-authenticate", "proxy-authorization", "x-request-id",
})
# Set by the proxy after the request rules ran (rules see the client's fields only), or chosen per backend.
REQUEST_OWNED = FRAMING | {"host", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via",
                           "traceparent"}
RESPONSE_OWNED = FRAMING | {"date", "server", "via"}
# The earlier gateway's own example removes Server: the backend's Server and Date are dropped by the proxy anyway
# (the listener sends its own), so a `remove` of them is accepted and does nothing more.
REMOVABLE = frozenset({"date", "server"})


def compile_headers(value: Any, path: str, issues: Issues, owned: frozenset[str]) -> tuple[HeaderOp, ...]:
    """The operations of a `headers` list, in order; problems go to `issues` under `path`."""
    ops: list[HeaderOp] = []
    for entry in read_entries(value, path, issues, actions=ACTIONS, target="name", known=RULE_KEYS):
        op = _compile(entry, issues, owned)
        if op is not None:
            ops.append(op)
    return tuple(ops)


def _name(entry: Entry, key: str, issues: Issues, owned: frozenset[str]) -> bytes | None:
    name = entry.fields.get(key)
    where = join(entry.path, key)
    if not isinstance(name, str) or not TOKEN.match(name):
        issues.add(where, "Must be a header name (letters, digits and !#$%&'*+-.^_`|~, at most 256).")
        return None
    if name.lower() in owned and not (entry.action == "remove" and name.lower() in REMOVABLE):
        issues.add(where, f"{name} is managed by the gateway and cannot be changed by a rule.")
        return None
    return name.lower().encode("ascii")


def _value(entry: Entry, issues: Issues) -> bytes | None:
    value = entry.fields.get("value")
    where = join(entry.path, "value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        issues.add(where, f"A {entry.action} rule needs a string value.")
        return None
    if len(value) > MAX_VALUE or any(c in value for c in "\r\n\0"):
        issues.add(where, f"Must be at most {MAX_VALUE} characters, without line breaks or NUL.")
        return None
    try:
        return value.strip().encode("latin-1")
    except UnicodeEncodeError:
        issues.add(where, "Header values are Latin-1 text; this one has other characters.")
        return None


def _compile(entry: Entry, issues: Issues, owned: frozenset[str]) -> HeaderOp | None:
    name = _name(entry, "name", issues, owned)
    action = entry.action
    if action in ("add", "set"):
        value = _value(entry, issues)
        if name is None or value is None:
            return None
        return _add(name, value) if action == "add" else _set(name, value)
    if action == "remove":
        return _remove(name) if name is not None else None
    if action == "rename":
        to = _name(entry, "to", issues, owned)
        if name is None or to is None:
            return None
        return _rename(name, to) if to != name else None
    try:
        regex = compile_safe(entry.fields.get("pattern"))
    except ValueError as exc:
        issues.add(join(entry.path, "pattern"), str(exc))
        return None
    try:
        template = compile_template(entry.fields.get("replacement", ""), regex)
    except ValueError as exc:
        issues.add(join(entry.path, "replacement"), str(exc))
        return None
    if any(c in part for part in template if isinstance(part, str) for c in "\r\n\0"):
        issues.add(join(entry.path, "replacement"), "Must not contain line breaks or NUL.")
        return None
    return _replace(name, regex, template) if name is not None else None


def _add(name: bytes, value: bytes) -> HeaderOp:
    def add(headers: Headers) -> Headers:
        for item in headers:
            if item[0] == name:
                return headers
        return [*headers, (name, value)]
    return add


def _set(name: bytes, value: bytes) -> HeaderOp:
    def set_(headers: Headers) -> Headers:
        return [item for item in headers if item[0] != name] + [(name, value)]
    return set_


def _remove(name: bytes) -> HeaderOp:
    def remove(headers: Headers) -> Headers:
        return [item for item in headers if item[0] != name]
    return remove


def _rename(name: bytes, to: bytes) -> HeaderOp:
    """Every `name` field becomes a `to` field in place; existing `to` fields are replaced (dropped) first."""
    def rename(headers: Headers) -> Headers:
        if not any(item[0] == name for item in headers):
            return headers
        return [(to, value) if field == name else (field, value) for field, value in headers if field != to]
    return rename


def _replace(name: bytes, regex: re.Pattern[str], template: Template) -> HeaderOp:
    """Every match in every `name` value is replaced, as the earlier gateway's `replace_all` did."""
    def substitute(match: re.Match[str]) -> str:
        return expand(template, match)

    def replace(headers: Headers) -> Headers:
        out = []
        for field, value in headers:
            if field == name:
                text = regex.sub(substitute, value.decode("latin-1"))
                try:
                    value = text.strip().encode("latin-1")
                except UnicodeEncodeError:
                    pass  # the value stays as it was rather than becoming something we cannot send
            out.append((field, value))
        return out
    return replace


def apply(ops: tuple[HeaderOp, ...], headers: Headers) -> Headers:
    for op in ops:
        headers = op(headers)
    return headers
