"""Regular expressions of transformation rules: compiled once, refused when they could backtrack catastrophically,
and `$1` / `${name}` replacement templates as the earlier gateway (Rust's regex crate) wrote them.

Python's `re` backtracks, so a pattern like `(a+)+$` takes exponential time on a crafted header value, and one
request could stall the worker's event loop. `unsafe_reason` is a static check run before compiling, on the
parse tree (`re._parser`, the stdlib parser that `re.compile` itself uses):

- a repetition whose inner open-ended repetition can run into the text the loop continues with, like `(a+)+`,
  `(\\w+\\s?)*` or `(.*,)*`: the ways to split the input grow exponentially;
- alternatives that can start with the same character inside a repetition, like `(a|ab)*` or `(\\w|\\d)+`;
- three or more open-ended repetitions that each overlap what follows them, like `(.*)/(.*)/(.*)`: the time
  grows like the length cubed (two, the common `^(.*)-(.*)$`, stay quadratic on values bounded by the
  server's 8 KiB header limit, and are allowed);
- back-references; patterns over 1,000 characters.

Character sets are compared on a sample alphabet (ASCII plus three non-ASCII letters and one "anything else"
slot), which errs on the side of calling two sets overlapping. Possessive repetitions and atomic groups never
backtrack and are not counted. The check refuses some harmless patterns (`(ab|ac)*`); the message says which
part to rewrite.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from contextvars import ContextVar
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

MAX_PATTERN_LENGTH = 1000
# A bounded repetition with more than this many rounds backtracks like an open-ended one.
_LARGE_REPEAT = 16
_SAMPLES = [chr(code) for code in range(128)] + ["\u00e9", "\u0130", "\u4e2d"]
_OTHER = 1 << len(_SAMPLES)  # characters outside the samples
_ALL = (_OTHER << 1) - 1
_RUST_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_TEMPLATE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z0-9_]+))")

Template = tuple[str | int, ...]
# A further check the control plane runs while validating a block (routes.regex_safety's, which adds a timing
# probe in a child process); the data plane never sets it. Returns why a pattern is refused, or None.
extra_check: ContextVar[Callable[[str], str | None] | None] = ContextVar("rusta_extra_regex_check", default=None)


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
    reason = unsafe_reason(source)
    check = extra_check.get()
    if not reason and check is not None:
        reason = check(source) or ""
    if reason:
        raise ValueError(reason)
    return compiled


def unsafe_reason(pattern: str) -> str:
    """Why matching `pattern` could take catastrophic time, or "" when it cannot (see the module docstring)."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        return f"Not a valid regular expression: {exc}."
    ignore_case = bool(tree.state.flags & re.IGNORECASE)
    walker = _Walker(ignore_case)
    walker.sequence(list(tree), in_loop=False, follow=_ALL)
    if walker.reason:
        return walker.reason
    if walker.overlapping >= 3:
        return ("Three or more open-ended repetitions (like .* or .+) each overlap what follows them, so matching "
                "time grows like the length cubed. Use narrower sets, like [^/]* instead of .* before a '/'.")
    return ""


class _Walker:
    """One pass over the parse tree: first-character sets, nullability, and the problems found."""

    def __init__(self, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        self.reason = ""
        self.overlapping = 0

    def sequence(self, items: list[tuple[Any, Any]], in_loop: bool, follow: int) -> tuple[int, bool]:
        """(first set, nullable) of a sequence followed by `follow`; walks every item with its own follow."""
        first = 0
        nullable = True
        after = follow
        summaries: list[tuple[int, bool]] = []
        for op, av in reversed(items):
            item_first, item_nullable = self.item(op, av, in_loop, after)
            summaries.append((item_first, item_nullable))
            after = item_first | after if item_nullable else item_first
        for item_first, item_nullable in reversed(summaries):
            first |= item_first
            if not item_nullable:
                nullable = False
                break
        return first, nullable

    def item(self, op: Any, av: Any, in_loop: bool, follow: int) -> tuple[int, bool]:
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
            return self.charset(op, av), False
        if op in (sre.AT,):
            return 0, True
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            self.sequence(list(av[1]), in_loop=False, follow=_ALL)
            return 0, True
        if op is sre.SUBPATTERN:
            return self.sequence(list(av[3]), in_loop, follow)
        if op is getattr(sre, "ATOMIC_GROUP", None):
            # No backtracking into the group: whatever it holds cannot multiply the work.
            return self.sequence(list(av), in_loop=False, follow=_ALL)
        if op is sre.BRANCH:
            return self.branch([list(alternative) for alternative in av[1]], in_loop, follow)
        if op is sre.GROUPREF_EXISTS:
            _group, yes, no = av
            alternatives = [list(yes)] + ([list(no)] if no else [[]])
            return self.branch(alternatives, in_loop, follow)
        if op in (sre.GROUPREF,):
            self.fail("Back-references (\\1, (?P=name)) are not allowed in transformation patterns.")
            return _ALL, True
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            return self.repeat(av, in_loop, follow)
        if op is getattr(sre, "POSSESSIVE_REPEAT", None):
            low, _high, body = av
            first, nullable = self.sequence(list(body), in_loop=False, follow=_ALL)
            return first, nullable or low == 0
        return _ALL, True  # anything else: assume the worst about what it matches

    def branch(self, alternatives: list[list[tuple[Any, Any]]], in_loop: bool, follow: int) -> tuple[int, bool]:
        first = 0
        nullable = False
        seen = 0
        for alternative in alternatives:
            alt_first, alt_nullable = self.sequence(alternative, in_loop, follow)
            if in_loop and (alt_first & seen or (alt_nullable and nullable)):
                self.fail("Alternatives inside a repetition can match the same text, like (a|ab)*: make them start "
                          "differently or move the repetition inside.")
            seen |= alt_first
            first |= alt_first
            nullable = nullable or alt_nullable
        return first, nullable

    def repeat(self, av: Any, in_loop: bool, follow: int) -> tuple[int, bool]:
        low, high, body = av
        items = list(body)
        open_ended = high == sre.MAXREPEAT or high > _LARGE_REPEAT
        if not open_ended:
            first, nullable = self.sequence(items, in_loop, follow)
            return first, nullable or low == 0
        # Inside the loop, what follows the body is the body again, or whatever follows the loop.
        body_first, _ = _Summary(self.ignore_case).sequence(items, in_loop=False, follow=follow)
        first, nullable = self.sequence(items, in_loop=True, follow=body_first | follow)
        if first & follow:
            if in_loop:
                self.fail("A repetition inside another repetition can match the same text in many ways, like (a+)+ "
                          "or (\\w+\\s?)*: the time to fail grows exponentially. Remove the inner or outer "
                          "repetition, or separate them with a character the inner one cannot match.")
            else:
                self.overlapping += 1
        return first, nullable or low == 0

    def charset(self, op: Any, av: Any) -> int:
        if op is sre.ANY:
            return _ALL
        if op is sre.LITERAL:
            return self._chars(lambda c: ord(c) == av) or _OTHER
        if op is sre.NOT_LITERAL:
            return self._chars(lambda c: ord(c) != av) | _OTHER
        return self._set(av)

    def _set(self, items: list[tuple[Any, Any]]) -> int:
        negate = bool(items) and items[0][0] is sre.NEGATE
        tests: list[Callable[[str], bool]] = []
        broad = False
        for op, av in items[1:] if negate else items:
            if op is sre.LITERAL:
                tests.append(functools.partial(_is_code, av))
            elif op is sre.RANGE:
                tests.append(functools.partial(_in_range, av[0], av[1]))
                broad = broad or av[1] > 127
            elif op is sre.CATEGORY:
                test, wide = _CATEGORIES.get(av, (lambda c: True, True))
                tests.append(test)
                broad = broad or wide
            else:
                tests.append(_anything)
                broad = True
        mask = self._chars(lambda c: any(test(c) for test in tests))
        if negate:
            return (_ALL & ~mask) | _OTHER
        return mask | (_OTHER if broad or not mask else 0)

    def _chars(self, test: Any) -> int:
        mask = 0
        for index, char in enumerate(_SAMPLES):
            if test(char) or (self.ignore_case and any(len(v) == 1 and test(v) for v in (char.lower(), char.upper()))):
                mask |= 1 << index
        return mask

    def fail(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason


class _Summary(_Walker):
    """First set and nullability only: nothing recorded, and no second walk of nested repetitions (which would
    make the check itself exponential in the nesting depth)."""

    def repeat(self, av: Any, in_loop: bool, follow: int) -> tuple[int, bool]:
        low, _high, body = av
        first, nullable = self.sequence(list(body), in_loop=False, follow=_ALL)
        return first, nullable or low == 0

    def branch(self, alternatives: list[list[tuple[Any, Any]]], in_loop: bool, follow: int) -> tuple[int, bool]:
        first = 0
        nullable = False
        for alternative in alternatives:
            alt_first, alt_nullable = self.sequence(alternative, False, _ALL)
            first |= alt_first
            nullable = nullable or alt_nullable
        return first, nullable

    def fail(self, reason: str) -> None:
        pass


def _is_code(code: int, char: str) -> bool:
    return ord(char) == code


def _in_range(low: int, high: int, char: str) -> bool:
    return low <= ord(char) <= high


def _anything(char: str) -> bool:
    return True


_CATEGORIES: dict[Any, tuple[Any, bool]] = {
    sre.CATEGORY_DIGIT: (str.isdecimal, True),
    sre.CATEGORY_NOT_DIGIT: (lambda c: not c.isdecimal(), True),
    sre.CATEGORY_SPACE: (str.isspace, True),
    sre.CATEGORY_NOT_SPACE: (lambda c: not c.isspace(), True),
    sre.CATEGORY_WORD: (lambda c: c.isalnum() or c == "_", True),
    sre.CATEGORY_NOT_WORD: (lambda c: not (c.isalnum() or c == "_"), True),
}


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
