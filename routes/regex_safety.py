"""Refuses regular expressions that can backtrack catastrophically, before they are saved.

`check_regex(pattern)` returns None for a usable pattern, else a message for the operator. Two checks:

1. Static: the parsed pattern (Python's own parser, so the check sees what `re` will run) is searched for the
   shapes that make backtracking exponential: inside an unbounded repetition, a variable-length part whose
   first characters can also start what follows it in the loop (`(a+)+`, `(\\w+\\s?)*`, `(.*)*`), or
   alternatives that can match the same text (`(a|a)*`, `(a|ab|b)*`). Possessive quantifiers and atomic
   groups do not backtrack and are not flagged; `(/[a-z]+)+` is fine because `/` cannot continue `[a-z]+`.
2. A bounded timing probe for the rest (polynomial blow-ups like `.*a.*a.*a.*b`): the pattern is searched in
   a child process over adversarial inputs of at most PROBE_LENGTH characters built from its own repeated
   parts, and refused when one search takes longer than PROBE_BUDGET_S (or the child does not finish within
   PROBE_TIMEOUT_S). Cubic and worse patterns go far over; a quadratic one (any unanchored `(x+y)*z`
   searched over 2 KB) stays well under. A child process, because a running `re` match cannot be
   interrupted; its startup is not counted.

The probe is a bounded test, not a proof; the static check is what catches the exponential cases. Route path
patterns are not regular expressions (literal segments and `{name}` parameters matched by a trie in
protocols.table), so they cannot backtrack and need no check. Results are remembered per pattern.
"""
from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from re import _constants as C  # type: ignore[attr-defined]  # noqa: N812 - Python's own opcode names
from re import _parser as sre_parse  # type: ignore[attr-defined]  # the parser `re` itself uses
from typing import Any

MAX_PATTERN_LENGTH = 2000
PROBE_LENGTH = 2048
PROBE_BUDGET_S = 0.5
PROBE_TIMEOUT_S = 3.0
# A bounded repetition with more than this many rounds counts as unbounded: 2^30 is as bad as infinite.
LARGE_REPEAT = 16
MAX_UNITS = 12  # repeated units per probe length, so a long pattern's probe stays short
_UNIVERSE = tuple(chr(code) for code in range(256)) + (
    "\u0100", "\u03b1", "\u0416", "\u0660", "\u2028", "\u3000", "\u4e2d", "\U0001f600",
)
_ALL = frozenset(_UNIVERSE)
_EMPTY: frozenset[str] = frozenset()
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT)
_CATEGORIES: dict[Any, Any] = {
    C.CATEGORY_DIGIT: str.isdecimal,
    C.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
    C.CATEGORY_SPACE: str.isspace,
    C.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    C.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    C.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    C.CATEGORY_LINEBREAK: lambda c: c == "\n",
    C.CATEGORY_NOT_LINEBREAK: lambda c: c != "\n",
}


class _Unsafe(Exception):
    """Raised inside the walk with the operator's message."""


@functools.lru_cache(maxsize=2048)
def check_regex(pattern: Any) -> str | None:
    """None when `pattern` compiles and cannot backtrack catastrophically, else why it is refused."""
    if not isinstance(pattern, str):
        return "Must be a regular expression (a string)."
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"The regular expression is longer than {MAX_PATTERN_LENGTH} characters."
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        return f"Not a valid regular expression: {exc}."
    except (RecursionError, OverflowError):
        return "Not a usable regular expression: it nests too deeply."
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"Not a valid regular expression: {exc}."
    analysis = _Analysis(bool(parsed.state.flags & re.IGNORECASE))
    try:
        analysis.walk(list(parsed), _EMPTY, in_loop=False)
    except _Unsafe as exc:
        return f"The regular expression can backtrack catastrophically: {exc} Rewrite it without that ambiguity."
    if not analysis.loops:
        return None
    slow = _probe(pattern, analysis.inputs(list(parsed)))
    if slow is not None:
        return (f"The regular expression is too slow on input like {slow!r}: searching it (at most {PROBE_LENGTH} "
                f"characters) took over {PROBE_BUDGET_S:g} s. Make its repeated parts unambiguous.")
    return None


class _Analysis:
    """FIRST sets (over a sample alphabet) of parsed pattern items, and the walk that looks for ambiguity."""

    def __init__(self, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        self.loops: list[list[Any]] = []  # bodies of unbounded repetitions, for the probe's inputs

    # --- FIRST sets -------------------------------------------------------------------------------------

    def chars(self, op: Any, av: Any) -> frozenset[str]:
        """The sample characters one single-character item matches."""
        if op is C.ANY:
            return _ALL
        if op is C.LITERAL:
            return self._fold(chr(av))
        if op is C.NOT_LITERAL:
            return _ALL - self._fold(chr(av))
        if op is C.IN:
            negate = bool(av) and av[0][0] is C.NEGATE
            found: set[str] = set()
            for kind, value in av[1:] if negate else av:
                if kind is C.LITERAL:
                    found |= self._fold(chr(value))
                elif kind is C.RANGE:
                    low, high = value
                    found |= {c for c in _UNIVERSE if low <= ord(c) <= high or (
                        self.ignore_case and (low <= ord(c.lower()) <= high or low <= ord(c.upper()) <= high))}
                elif kind is C.CATEGORY:
                    test = _CATEGORIES.get(value)
                    found |= {c for c in _UNIVERSE if test is None or test(c)}
                else:
                    found |= _ALL
            return _ALL - found if negate else frozenset(found)
        return _ALL

    def _fold(self, char: str) -> frozenset[str]:
        if not self.ignore_case:
            return frozenset((char,))
        return frozenset(c for c in (char, char.lower(), char.upper(), char.swapcase()) if len(c) == 1)

    def first(self, seq: Iterable[Any]) -> tuple[frozenset[str], bool]:
        """(characters that can start a match of the sequence, whether it can match the empty string)."""
        found: set[str] = set()
        for op, av in seq:
            item_first, nullable = self.first_item(op, av)
            found |= item_first
            if not nullable:
                return frozenset(found), False
        return frozenset(found), True

    def first_item(self, op: Any, av: Any) -> tuple[frozenset[str], bool]:
        if op in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY):
            return self.chars(op, av), False
        if op is C.SUBPATTERN:
            return self.first(av[3])
        if op is C.ATOMIC_GROUP:
            return self.first(av)
        if op in _REPEATS or op is C.POSSESSIVE_REPEAT:
            low, _high, body = av
            body_first, nullable = self.first(body)
            return body_first, nullable or low == 0
        if op is C.BRANCH:
            found: set[str] = set()
            any_nullable = False
            for alternative in av[1]:
                alt_first, nullable = self.first(alternative)
                found |= alt_first
                any_nullable = any_nullable or nullable
            return frozenset(found), any_nullable
        if op is C.GROUPREF_EXISTS:
            _group, yes, no = av
            yes_first, yes_nullable = self.first(yes)
            no_first, no_nullable = self.first(no or [])
            return yes_first | no_first, yes_nullable or no_nullable
        if op is C.GROUPREF:
            return _ALL, True
        return _EMPTY, True  # anchors and lookarounds match no character

    # --- The walk ----------------------------------------------------------------------------------------

    def walk(self, seq: list[Any], follow: frozenset[str], in_loop: bool) -> None:
        """Raise _Unsafe on an ambiguity. `follow`: what can come right after `seq` without leaving the
        innermost enclosing unbounded loop (its own FIRST set, as the loop goes round)."""
        for index, (op, av) in enumerate(seq):
            rest_first, rest_nullable = self.first(seq[index + 1 :])
            after = rest_first | follow if rest_nullable else rest_first
            if op is C.SUBPATTERN:
                self.walk(list(av[3]), after, in_loop)
            elif op is C.ATOMIC_GROUP:
                self.walk(list(av), _EMPTY, in_loop=False)  # no backtracking into it once it matched
            elif op is C.POSSESSIVE_REPEAT:
                self.walk(list(av[2]), _EMPTY, in_loop=False)
            elif op in _REPEATS:
                low, high, body = av
                body = list(body)
                body_first, body_nullable = self.first(body)
                if in_loop and low != high and body_first & after:
                    raise _Unsafe(f"a repeated part that can match {_show(body_first & after)} is followed, "
                                  "inside an outer repetition, by something that can match the same, so the "
                                  "same text splits in many ways.")
                unbounded = high is C.MAXREPEAT or high > LARGE_REPEAT
                if unbounded and high != 1:
                    self.loops.append(body)
                    if body_nullable and in_loop:
                        raise _Unsafe("a repetition of something that can match empty text is itself repeated.")
                    self.walk(body, body_first | (after if in_loop else _EMPTY), in_loop=True)
                else:
                    self.walk(body, after, in_loop)
            elif op is C.BRANCH:
                alternatives = [list(alt) for alt in av[1]]
                if in_loop:
                    self._check_alternatives(alternatives, after)
                for alternative in alternatives:
                    self.walk(alternative, after, in_loop)
            elif op is C.GROUPREF_EXISTS:
                _group, yes, no = av
                self.walk(list(yes), after, in_loop)
                self.walk(list(no or []), after, in_loop)

    def _check_alternatives(self, alternatives: list[list[Any]], after: frozenset[str]) -> None:
        seen: list[frozenset[str]] = []
        empty = 0
        for alternative in alternatives:
            alt_first, nullable = self.first(alternative)
            if nullable:
                empty += 1
                alt_first = alt_first | after
            for other in seen:
                if alt_first & other:
                    raise _Unsafe(f"alternatives inside a repetition can both start with {_show(alt_first & other)}"
                                  ", so the same text matches in many ways.")
            seen.append(alt_first)
        if empty > 1:
            raise _Unsafe("two alternatives inside a repetition can both match empty text.")

    # --- Probe inputs ------------------------------------------------------------------------------------

    def sample(self, seq: Iterable[Any], depth: int = 0) -> str:
        """A short string built from the sequence's items (one round of each repetition, or its minimum)."""
        out: list[str] = []
        for op, av in seq:
            if op in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY):
                out.append(_pick(self.chars(op, av)))
            elif op is C.SUBPATTERN and depth < 20:
                out.append(self.sample(av[3], depth + 1))
            elif op is C.ATOMIC_GROUP and depth < 20:
                out.append(self.sample(av, depth + 1))
            elif (op in _REPEATS or op is C.POSSESSIVE_REPEAT) and depth < 20:
                low, _high, body = av
                out.append(self.sample(body, depth + 1) * max(1, min(low, 4)))
            elif op is C.BRANCH and av[1] and depth < 20:
                out.append(self.sample(av[1][0], depth + 1))
        return "".join(out)

    def inputs(self, parsed: list[Any]) -> list[str]:
        """Adversarial inputs: the pattern's lead-in, one repeated part many times, then a character that fails."""
        lead = ""
        for index, (op, _av) in enumerate(parsed):
            if op in _REPEATS or op is C.BRANCH or op is C.SUBPATTERN:
                lead = self.sample(parsed[:index])
                break
        units = {self.sample(body) for body in self.loops}
        # The pattern's own text cut short before each of its items: all the repeated parts and separators, but
        # not the item that would complete a match (what makes `.*a.*a.*b` try every split).
        units.update(self.sample(parsed[:end]) for end in range(1, len(parsed) + 1))
        units.discard("")
        units = set(sorted(units, key=len)[:MAX_UNITS])
        candidates: list[str] = []
        for length in (24, 64, 256, PROBE_LENGTH):
            for unit in sorted(units):
                for tail in ("!", "\n"):
                    count = max(1, (length - len(lead) - 1) // len(unit))
                    candidates.append((lead + unit * count)[: length - 1] + tail)
        return candidates


def _pick(chars: frozenset[str]) -> str:
    for preferred in "a0A_ -./":
        if preferred in chars:
            return preferred
    return min(chars) if chars else "a"


def _show(chars: frozenset[str]) -> str:
    shown = sorted(chars)
    text = "".join(c for c in shown[:5] if c.isprintable()) or "such characters"
    return f"'{text}…'" if len(shown) > 5 else f"'{text}'"


# The child: reads {"pattern", "inputs", "budget"} as JSON on stdin and prints each input's index before
# searching it; "slow" after one that took longer than the budget, "done" when all were quick.
_CHILD = """
import json, re, sys, time
job = json.load(sys.stdin)
rx = re.compile(job["pattern"])
for index, text in enumerate(job["inputs"]):
    print(index, flush=True)
    start = time.perf_counter()
    rx.search(text)
    if time.perf_counter() - start > job["budget"]:
        print("slow", flush=True)
        break
else:
    print("done", flush=True)
"""


def _probe(pattern: str, inputs: list[str]) -> str | None:
    """The (shortened) input on which the pattern went over its time budget, or None."""
    job = json.dumps({"pattern": pattern, "inputs": inputs, "budget": PROBE_BUDGET_S})
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD], input=job, capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S, check=False)
        output = done.stdout
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        output += "\nslow"
    lines = output.split()
    if not lines or lines[-1] != "slow":
        return None  # all quick (or the child could not run at all: the static check still stands)
    started = [int(line) for line in lines if line.isdigit()]
    return _shorten(inputs[started[-1] if started else 0])


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:30]}…({len(text)} characters)"
