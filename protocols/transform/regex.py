"""Regular expressions of transformation rules: compiled once, refused when they could backtrack catastrophically
(protocols.regex_safety says why), and `$1` / `${name}` replacement templates as the earlier gateway (Rust's regex
crate) wrote them.
"""
from __future__ import annotations

import re
from typing import Any

from protocols.regex_safety import TOO_DEEP, unsafe_reason

MAX_PATTERN_LENGTH = 1000
_RUST_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_TEMPLATE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z0-9_]+))")

Template = tuple[str | int, ...]


def translate(pattern: str) -> str:
    """The earlier gateway's Rust syntax `(?<name>...)` as Python's `(?P<name>...)`; the rest is shared."""
    return _RUST_NAMED_GROUP.sub("(?P<", pattern)


def compile_safe(pattern: Any) -> re.Pattern[str]:
    """Compile a rule's pattern or raise ValueError with a message for the operator."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("A regular expression is required here.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"The pattern is longer than {MAX_PATTERN_LENGTH} characters.")
    source = translate(pattern)
    try:
        compiled = re.compile(source)
    except re.error as exc:
        raise ValueError(f"Not a valid regular expression: {exc}.") from None
    except (RecursionError, OverflowError):
        raise ValueError(TOO_DEEP) from None
    reason = unsafe_reason(source)
    if reason:
        raise ValueError(reason)
    return compiled


def compile_template(text: Any, regex: re.Pattern[str]) -> Template:
    """A replacement like `v$1-proxy`, `/${name}/x` or `$$5` as literal and group parts; ValueError names a group
    the pattern does not have. As in the earlier gateway, `$name` takes the longest run of letters, digits and
    `_`, so write `${1}a` rather than `$1a`; a backslash is an ordinary character."""
    if not isinstance(text, str):
        raise ValueError("The replacement must be a string (it may be empty).")
    parts: list[str | int] = []
    position = 0
    for found in _TEMPLATE.finditer(text):
        parts.append(text[position:found.start()])
        position = found.end()
        name = found.group(1) if found.group(1) is not None else found.group(2)
        if name is None:
            parts.append("$")
            continue
        if name.isdigit():
            index = int(name)
            if index > regex.groups:
                raise ValueError(f"The replacement uses group {index}, but the pattern has {regex.groups} group(s).")
            parts.append(index)
        elif name in regex.groupindex:
            parts.append(regex.groupindex[name])
        else:
            digits = re.match(r"\d*", name).group()  # type: ignore[union-attr]
            hint = f" (to follow group {digits} with '{name[len(digits):]}', write ${{{digits}}}" \
                   f"{name[len(digits):]})" if digits else ""
            raise ValueError(f"The replacement uses group '{name}', which the pattern does not define{hint}.")
    parts.append(text[position:])
    merged: list[str | int] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged)


def expand(template: Template, match: re.Match[str]) -> str:
    """The replacement text for one match (a group that did not take part is empty, as in Rust)."""
    return "".join(part if isinstance(part, str) else (match.group(part) or "") for part in template)
