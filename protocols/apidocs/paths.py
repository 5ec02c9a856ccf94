"""Path templates learned from traffic: which segments of a route's paths are parameters.

A route's static segments are literal. At a `{param}` segment of the route, a value that is an id (a number, a
uuid, a token or slug holding one) makes the position a parameter at once, named as in the route; word
values (`routes`, `validate`) stay literal until more than MANY distinct ones were seen at that position under the
same prefix, when the position becomes a parameter for every value. So a catch-all route `/api/{a}/{b}` in front
of a whole API learns `/api/routes/{b}` and `/api/routes/validate`, and `/users/{name}` learns `/users/{name}` once
it saw a dozen names. What is remembered per prefix is capped (MAX_PREFIXES, MANY + 1 values each).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MANY = 12
MAX_PREFIXES = 1000

_HEX_RUN = re.compile(r"[0-9a-fA-F]{8,}")
_DIGITS = re.compile(r"\d{4,}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,}$")

# A route's pattern as the learner reads it: per segment, the parameter's name, or None for a static segment.
Pattern = Sequence[str | None]
Prefix = tuple[str, ...]


def is_id(segment: str) -> bool:
    """Whether a path segment's value is an id: digits, a uuid, a token of 16+ letters, digits, `-` and `_` with a
    digit, or a slug holding an id (4+ digits in a row, or 8+ hex characters with a digit: `order-12345`,
    `cache:users:3f9a2c41d0b7`)."""
    if segment.isdigit() or _UUID.match(segment):
        return True
    if not any(c.isdigit() for c in segment):
        return False
    if _TOKEN.match(segment) or _DIGITS.search(segment):
        return True
    return any(any(c.isdigit() for c in run) for run in _HEX_RUN.findall(segment))


class Templater:
    """Turns request paths of one route into templates (see the module docstring), learning as it goes."""

    def __init__(self, many: int = MANY, max_prefixes: int = MAX_PREFIXES) -> None:
        self.many = many
        self.max_prefixes = max_prefixes
        self.seen: dict[Prefix, set[str]] = {}  # literal values at the position after the prefix
        self.wild: set[Prefix] = set()  # prefixes whose next position is a parameter

    def template(self, segments: Sequence[str], pattern: Pattern) -> tuple[str, dict[str, str]]:
        """The template of a path (its segments, without the leading "/"; a trailing "" keeps the trailing slash)
        and the values of its parameters by name. `pattern` gives the route's parameter names by position."""
        parts: list[str] = []
        values: dict[str, str] = {}
        for index, segment in enumerate(segments):
            name = pattern[index] if index < len(pattern) else None
            if name is None or segment == "":
                parts.append(segment)
                continue
            prefix = tuple(parts)
            if prefix in self.wild or is_id(segment) or self._count(prefix, segment):
                parts.append("{" + name + "}")
                values[name] = segment
            else:
                parts.append(segment)
        return "/" + "/".join(parts), values

    def _count(self, prefix: Prefix, segment: str) -> bool:
        """Remember a word value at a position; True when the position now has too many to be literal."""
        values = self.seen.get(prefix)
        if values is None:
            if len(self.seen) >= self.max_prefixes:
                return False
            values = self.seen[prefix] = set()
        values.add(segment)
        if len(values) > self.many:
            self.wild.add(prefix)
            del self.seen[prefix]
            return True
        return False


def split(path: str) -> list[str]:
    """A path's segments without the leading "/" (a trailing slash gives a last "")."""
    return path[1:].split("/") if path not in ("", "/") else []


def collapse(templates: Iterable[str], many: int = MANY) -> dict[str, str]:
    """Templates as several processes learned them, made consistent: a position where more than `many` distinct
    literal words appear under the same prefix (across all of them) becomes a parameter, named like the other
    parameters at that position when there are some, else `param{n}`. Returns each template's final form."""
    paths = sorted(set(templates))
    words: dict[Prefix, set[str]] = {}
    names: dict[Prefix, str] = {}
    for path in paths:
        segments = split(path)
        for index, segment in enumerate(segments):
            prefix = tuple(segments[:index])
            if segment.startswith("{") and segment.endswith("}"):
                names.setdefault(prefix, segment)
            elif segment:
                words.setdefault(prefix, set()).add(segment)
    wild = {prefix for prefix, values in words.items() if len(values) > many}
    result: dict[str, str] = {}
    for path in paths:
        segments = split(path)
        out: list[str] = []
        for index, segment in enumerate(segments):
            prefix = tuple(segments[:index])
            if prefix in wild and segment and not segment.startswith("{"):
                out.append(names.get(prefix, f"{{param{index + 1}}}"))
            else:
                out.append(segment)
        result[path] = "/" + "/".join(out)
    return result
