"""The `condition` of a status code mapping, compiled once and evaluated for real (the earlier gateway parsed it and
never looked at it).

Two forms:
- Rusta's object, every key optional and all of them required to hold:
  `{"methods": ["GET", "HEAD"], "path": "^/health(/.*)?$", "headers": {"x-backend-mode": "maintenance",
  "retry-after": true, "x-cache": false}}`. `path` is a regular expression (or a list of them, any may match)
  that must match the whole client request path; a header's value is a regular expression that must match a
  whole value of that upstream response field, `true` means present, `false` absent.
- The earlier gateway's string: clauses joined by `&&` (or `and`), each `path|method|header.NAME` then `==`,
  `!=` or `=~` (regular expression, whole value) then a quoted value: `path == '/health'`,
  `method == 'GET' && header.x-mode =~ 'maint.*'`. A string this grammar cannot read is a configuration error,
  never silently ignored.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from protocols.block_errors import Issues, join
from protocols.transform.headers import TOKEN
from protocols.transform.regex import compile_safe

Headers = list[tuple[bytes, bytes]]
Predicate = Callable[[str, str, Headers], bool]
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_CLAUSE = re.compile(
    r"""^\s*(?P<subject>path|method|headers?\s*\.\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+|headers?\s*\[\s*(?P<q>['"])"""
    r"""(?P<bracketed>[^'"]+)(?P=q)\s*\])\s*(?P<op>==|!=|=~)\s*(?P<quote>['"])(?P<value>.*)(?P=quote)\s*$""",
    re.IGNORECASE,
)
_AND = re.compile(r"\s*(?:&&|\band\b)\s*")


class Condition:
    """All predicates must hold. An empty condition always holds."""

    __slots__ = ("predicates",)

    def __init__(self, predicates: tuple[Predicate, ...]) -> None:
        self.predicates = predicates

    def holds(self, method: str, path: str, headers: Headers) -> bool:
        for predicate in self.predicates:
            if not predicate(method, path, headers):
                return False
        return True


ALWAYS = Condition(())


def compile_condition(value: Any, path: str, issues: Issues) -> Condition:
    if value is None or value == "":
        return ALWAYS
    if isinstance(value, str):
        return _from_string(value, path, issues)
    if isinstance(value, dict):
        return _from_object(value, path, issues)
    issues.add(path, 'Must be an object like {"methods": ["GET"], "path": "^/health$"} or a string like '
                     "\"path == '/health'\".")
    return ALWAYS


def _from_object(value: dict[str, Any], path: str, issues: Issues) -> Condition:
    predicates: list[Predicate] = []
    for key in value:
        if key not in ("methods", "path", "headers") and not str(key).startswith("_"):
            issues.add(join(path, str(key)), "Unknown key; a condition has methods, path and headers.")
    methods = value.get("methods")
    if methods is not None:
        if isinstance(methods, str):
            methods = [methods]
        if not isinstance(methods, list) or not methods or any(
                not isinstance(m, str) or m.upper() not in METHODS for m in methods):
            issues.add(join(path, "methods"), f"Must be a list of HTTP methods ({', '.join(sorted(METHODS))}).")
        else:
            predicates.append(_method_in(frozenset(m.upper() for m in methods)))
    paths = value.get("path")
    if paths is not None:
        patterns = paths if isinstance(paths, list) else [paths]
        compiled = []
        for index, pattern in enumerate(patterns):
            where = join(path, "path") if not isinstance(paths, list) else join(join(path, "path"), index)
            try:
                compiled.append(compile_safe(pattern))
            except ValueError as exc:
                issues.add(where, str(exc))
        if compiled:
            predicates.append(_path_matches(tuple(compiled)))
    headers = value.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            issues.add(join(path, "headers"), 'Must be an object like {"x-mode": "maint.*", "retry-after": true}.')
        else:
            for name, expected in headers.items():
                where = join(join(path, "headers"), str(name))
                if not isinstance(name, str) or not TOKEN.match(name):
                    issues.add(where, "Not a header name.")
                    continue
                field = name.lower().encode("ascii")
                if isinstance(expected, bool):
                    predicates.append(_header_present(field, expected))
                    continue
                try:
                    predicates.append(_header_matches(field, compile_safe(expected), True))
                except ValueError as exc:
                    issues.add(where, f"{exc} (or true for present, false for absent)")
    return Condition(tuple(predicates))


def _from_string(text: str, path: str, issues: Issues) -> Condition:
    predicates: list[Predicate] = []
    for clause in _AND.split(text.strip()):
        found = _CLAUSE.match(clause)
        if found is None:
            issues.add(path, f"Cannot read the condition clause {clause.strip()!r}: write like \"path == '/health'\", "
                             "\"method != 'GET'\" or \"header.x-mode =~ 'maint.*'\", joined with &&.")
            return ALWAYS
        subject = found.group("subject").lower().replace(" ", "")
        op, value = found.group("op"), found.group("value")
        positive = op != "!="
        if subject == "method":
            if op == "=~":
                issues.add(path, "Compare the method with == or != (a method is not a pattern).")
                continue
            predicates.append(_method_in(frozenset({value.upper()}), positive))
            continue
        try:
            regex = compile_safe(value) if op == "=~" else re.compile(re.escape(value))
        except ValueError as exc:
            issues.add(path, str(exc))
            continue
        if subject == "path":
            predicates.append(_path_matches((regex,), positive))
        else:
            name = found.group("bracketed") or subject.split(".", 1)[1]
            predicates.append(_header_matches(name.lower().encode("latin-1"), regex, positive))
    return Condition(tuple(predicates))


def _method_in(methods: frozenset[str], positive: bool = True) -> Predicate:
    def check(method: str, path: str, headers: Headers) -> bool:
        return (method in methods) is positive
    return check


def _path_matches(patterns: tuple[re.Pattern[str], ...], positive: bool = True) -> Predicate:
    def check(method: str, path: str, headers: Headers) -> bool:
        return any(pattern.fullmatch(path) for pattern in patterns) is positive
    return check


def _header_matches(name: bytes, pattern: re.Pattern[str], positive: bool) -> Predicate:
    def check(method: str, path: str, headers: Headers) -> bool:
        found = any(field == name and pattern.fullmatch(value.decode("latin-1")) for field, value in headers)
        return found is positive
    return check


def _header_present(name: bytes, present: bool) -> Predicate:
    def check(method: str, path: str, headers: Headers) -> bool:
        return any(field == name for field, _ in headers) is present
    return check
