"""Parsing of route path patterns (`/users/{id}`) and internal path templates, shared by validation and matching."""
from __future__ import annotations

import re
from dataclasses import dataclass

PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Characters a static segment may hold: RFC 3986 pchar without percent-escapes of "/".
STATIC_SEGMENT = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@%]*$")
MAX_PATH_LENGTH = 2048


class PatternError(ValueError):
    """A path pattern or template that cannot be used; the message is shown to the operator."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One `/`-separated piece of a pattern: static text, or a `{name}` parameter."""

    text: str
    is_param: bool


def parse_pattern(pattern: str) -> tuple[Segment, ...]:
    """Split an external path pattern into segments, raising PatternError with a readable reason."""
    if not isinstance(pattern, str) or not pattern:
        raise PatternError("The path is required.")
    if not pattern.startswith("/"):
        raise PatternError("The path must start with '/'.")
    if len(pattern) > MAX_PATH_LENGTH:
        raise PatternError(f"The path is longer than {MAX_PATH_LENGTH} characters.")
    if "?" in pattern or "#" in pattern:
        raise PatternError("The path must not contain '?' or '#'; the query string is forwarded as is.")
    body = pattern[1:]
    if body.endswith("/"):
        body = body[:-1]
    if body == "":
        return ()
    segments: list[Segment] = []
    seen: set[str] = set()
    for raw in body.split("/"):
        if raw == "":
            raise PatternError("The path must not contain empty segments ('//').")
        if raw in (".", ".."):
            raise PatternError("The path must not contain '.' or '..' segments.")
        if raw.startswith("{") and raw.endswith("}"):
            name = raw[1:-1]
            if not PARAM_NAME.match(name):
                raise PatternError(
                    f"'{raw}' is not a valid parameter: use {{name}} with letters, digits and '_', "
                    "not starting with a digit."
                )
            if name in seen:
                raise PatternError(f"The parameter '{{{name}}}' appears twice.")
            seen.add(name)
            segments.append(Segment(name, True))
            continue
        if "{" in raw or "}" in raw:
            raise PatternError(
                f"'{raw}' mixes text and braces: a parameter must fill a whole segment, like '/users/{{id}}'."
            )
        if not STATIC_SEGMENT.match(raw):
            raise PatternError(f"'{raw}' contains characters that are not allowed in a URL path.")
        segments.append(Segment(raw, False))
    return tuple(segments)


def pattern_params(segments: tuple[Segment, ...]) -> frozenset[str]:
    return frozenset(s.text for s in segments if s.is_param)


def canonical_pattern(segments: tuple[Segment, ...]) -> str:
    """The pattern with parameter names erased: `/users/{id}` and `/users/{uid}` match the same requests."""
    return "/" + "/".join("{}" if s.is_param else s.text for s in segments)


def parse_template(template: str, available: frozenset[str]) -> tuple[tuple[bool, str], ...]:
    """Split an internal path template into `(is_param, text)` parts; empty means "forward the path as is".

    Raises PatternError when the template is malformed or names a parameter the external path lacks.
    """
    if template == "":
        return ()
    if not template.startswith("/"):
        raise PatternError("The internal path must start with '/'.")
    if len(template) > MAX_PATH_LENGTH:
        raise PatternError(f"The internal path is longer than {MAX_PATH_LENGTH} characters.")
    if "?" in template or "#" in template:
        raise PatternError("The internal path must not contain '?' or '#'.")
    parts: list[tuple[bool, str]] = []
    position = 0
    for match in re.finditer(r"\{([^{}]*)\}", template):
        name = match.group(1)
        if not PARAM_NAME.match(name):
            raise PatternError(f"'{{{name}}}' is not a valid parameter in the internal path.")
        if name not in available:
            raise PatternError(f"The internal path uses '{{{name}}}', which the external path does not define.")
        parts.append((False, template[position : match.start()]))
        parts.append((True, name))
        position = match.end()
    parts.append((False, template[position:]))
    if any("{" in text or "}" in text for is_param, text in parts if not is_param):
        raise PatternError("The internal path has an unmatched '{' or '}'.")
    return tuple(part for part in parts if part[0] or part[1])
