"""The one check that refuses regular expressions which could backtrack catastrophically, before they are used.

Python's `re` backtracks, so a pattern like `(a+)+$` takes exponential time on a crafted header value, and one
request could stall the worker's event loop. `unsafe_reason(pattern)` returns why a pattern is refused, or "".
The data plane runs it when it compiles a route table (protocols.transform.regex.compile_safe); the control plane
runs the same call while validating a route, inside `timing_probe()`, which adds the probe below.

1. Static, on the parse tree (`re._parser`, the stdlib parser that `re.compile` itself uses), refusing:
   - a repetition whose inner variable-length part can run into the text the loop continues with, like
     `(a+)+`, `(\\w+\\s?)*`, `(.*,)*` or `(?:a?){20}a{20}`: the ways to split the input grow exponentially;
   - a repeated part that can match empty text, itself repeated, like `((a?)*)*`;
   - alternatives that can start with the same character (or both match empty text) inside a repetition, like
     `(a|b|ab)*` or `(ab|a.)*` (this refuses some harmless patterns, like `(xa|.b)*`; the message says which
     part to rewrite);
   - three or more open-ended repetitions that each overlap what follows them, like `(.*)/(.*)/(.*)`: the time
     grows like the length cubed (two, the common `^(.*)-(.*)$`, stay quadratic on values bounded by the
     server's 8 KiB header limit, and are allowed);
   - back-references; patterns nested too deeply to walk. (The length limit is compile_safe's.)
   A bounded repetition of more than 16 rounds counts as open-ended. Possessive repetitions and atomic groups
   never backtrack and are not counted. Character sets are compared on sample alphabets (protocols.
   regex_charsets), which err on the side of calling two sets overlapping.
2. Only while saving (`timing_probe()`): a bounded timing probe for the rest (polynomial blow-ups like
   `x*x*x*y`, cubic once a search tries every start): a pattern with a repetition is searched in a child
   process over adversarial inputs of at most PROBE_LENGTH characters built from its own repeated parts, and
   refused when one search takes longer than PROBE_BUDGET_S (or the child does not finish within
   PROBE_TIMEOUT_S). A child process, because a running `re` match cannot be interrupted. Not at table build:
   the proxy would pay a process per pattern, and a timing verdict on a busy machine could then leave out a
   route that was accepted when it was saved.

Route path patterns are not regular expressions (literal segments and `{name}` parameters matched by a trie in
protocols.table), so they cannot backtrack and need no check.
"""
from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from protocols.regex_charsets import ALL, COARSE, FINE, charset, pick, show

PROBE_LENGTH = 2048
PROBE_BUDGET_S = 0.5
PROBE_TIMEOUT_S = 3.0
MAX_UNITS = 12  # repeated units per probe length, so a long pattern's probe stays short
# A bounded repetition with more than this many rounds backtracks like an open-ended one.
LARGE_REPEAT = 16
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
_POSSESSIVE = getattr(sre, "POSSESSIVE_REPEAT", None)
_ATOMIC = getattr(sre, "ATOMIC_GROUP", None)

_probing: ContextVar[bool] = ContextVar("rusta_regex_timing_probe", default=False)

NESTED = ("A repetition inside another repetition can match the same text in many ways, like (a+)+ or (\\w+\\s?)*: "
          "the time to fail grows exponentially. Remove the inner or outer repetition, or separate them with a "
          "character the inner one cannot match.")
ALTERNATIVES = ("Alternatives inside a repetition can match the same text, like (a|ab)*: make them start "
                "differently or move the repetition inside.")
BACK_REFERENCE = "Back-references (\\1, (?P=name)) are not allowed in transformation patterns."
CUBIC = ("Three or more open-ended repetitions (like .* or .+) each overlap what follows them, so matching time "
         "grows like the length cubed. Use narrower sets, like [^/]* instead of .* before a '/'.")
TOO_DEEP = "Not a usable regular expression: it nests too deeply."


@contextmanager
def timing_probe() -> Iterator[None]:
    """Within this block (a save), `unsafe_reason` also runs the timing probe on patterns with a repetition."""
    token = _probing.set(True)
    try:
        yield
    finally:
        _probing.reset(token)


def unsafe_reason(pattern: str) -> str:
    """Why matching `pattern` could take catastrophic time, or "" when it cannot (see the module docstring)."""
    try:
        tree = sre_parse.parse(pattern)
        walker = _Walker(bool(tree.state.flags & re.IGNORECASE))
        walker.sequence(list(tree), in_loop=False, follow=ALL, loop_follow=0)
    except re.error as exc:
        return f"Not a valid regular expression: {exc}."
    except (RecursionError, OverflowError):
        return TOO_DEEP
    if walker.reason:
        return walker.reason
    if walker.overlapping >= 3:
        return CUBIC
    if walker.ambiguity:
        return f"The regular expression can backtrack catastrophically: {walker.ambiguity} Rewrite it without " \
               "that ambiguity."
    if walker.loops and _probing.get():
        slow = _slow_input(pattern, tuple(_Inputs(walker).build(list(tree))))
        if slow is not None:
            return (f"The regular expression is too slow on input like {slow!r}: searching it (at most "
                    f"{PROBE_LENGTH} characters) took over {PROBE_BUDGET_S:g} s. Make its repeated parts "
                    "unambiguous.")
    return ""


class _Walker:
    """One pass over the parse tree: first-character sets, nullability, and the problems found.

    Two follow sets travel with each item: `follow`, everything that can come after it (the whole alphabet at
    the end of the pattern, since a search need not end there), and `loop_follow`, only what comes after it
    without leaving the outermost enclosing open-ended repetition. The rules for nested repetitions and
    alternatives use the first; the stricter rules for any variable-length part inside a loop use the second,
    so text after a top-level loop, like the `b` of `(ab?)*b`, does not count against the loop's body. The
    stricter rules are also off inside lookarounds: they come from the control plane's former check, which did
    not look there, and a stricter verdict could leave out a stored route when the table is next built."""

    def __init__(self, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        self.reason = ""
        self.ambiguity = ""
        self.overlapping = 0
        self.strict = True  # off inside lookarounds, where the stricter rules never looked (see _Walker)
        self.loops: list[list[Any]] = []  # bodies of open-ended repetitions, for the probe's inputs

    def sequence(self, items: list[tuple[Any, Any]], in_loop: bool, follow: int, loop_follow: int) -> tuple[int, bool]:
        """(first set, nullable) of a sequence followed by `follow`; walks every item with its own follow."""
        after, loop_after = follow, loop_follow
        summaries: list[tuple[int, bool]] = []
        for op, av in reversed(items):
            item_first, item_nullable = self.item(op, av, in_loop, after, loop_after)
            summaries.append((item_first, item_nullable))
            after = item_first | after if item_nullable else item_first
            loop_after = item_first | loop_after if item_nullable else item_first
        first = 0
        for item_first, item_nullable in reversed(summaries):
            first |= item_first
            if not item_nullable:
                return first, False
        return first, True

    def item(self, op: Any, av: Any, in_loop: bool, follow: int, loop_follow: int) -> tuple[int, bool]:
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
            return self.charset(op, av), False
        if op is sre.AT:
            return 0, True
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            strict, self.strict = self.strict, False
            self.sequence(list(av[1]), in_loop=False, follow=ALL, loop_follow=0)
            self.strict = strict
            return 0, True
        if op is sre.SUBPATTERN:
            return self.sequence(list(av[3]), in_loop, follow, loop_follow)
        if op is _ATOMIC:
            # No backtracking into the group: whatever it holds cannot multiply the work.
            return self.sequence(list(av), in_loop=False, follow=ALL, loop_follow=0)
        if op is sre.BRANCH:
            return self.branch([list(alternative) for alternative in av[1]], in_loop, follow, loop_follow)
        if op is sre.GROUPREF_EXISTS:
            _group, yes, no = av
            alternatives = [list(yes)] + ([list(no)] if no else [[]])
            return self.branch(alternatives, in_loop, follow, loop_follow, conditional=True)
        if op is sre.GROUPREF:
            self.fail(BACK_REFERENCE)
            return ALL, True
        if op in _REPEATS:
            return self.repeat(av, in_loop, follow, loop_follow)
        if op is _POSSESSIVE:
            low, _high, body = av
            first, nullable = self.sequence(list(body), in_loop=False, follow=ALL, loop_follow=0)
            return first, nullable or low == 0
        return ALL, True  # anything else: assume the worst about what it matches

    def branch(self, alternatives: list[list[tuple[Any, Any]]], in_loop: bool, follow: int, loop_follow: int,
               conditional: bool = False) -> tuple[int, bool]:
        first = 0
        nullable = False
        seen = 0
        strict_seen: list[int] = []
        empty = 0
        for alternative in alternatives:
            alt_first, alt_nullable = self.sequence(alternative, in_loop, follow, loop_follow)
            if in_loop and (alt_first & seen & COARSE or (alt_nullable and nullable)):
                self.fail(ALTERNATIVES)
            if in_loop and self.strict and not conditional:
                # An alternative that can match empty text starts with whatever follows it.
                starts = alt_first | loop_follow if alt_nullable else alt_first
                empty += alt_nullable
                for other in strict_seen:
                    if starts & other & FINE:
                        self.ambiguous(f"alternatives inside a repetition can both start with {show(starts & other)}"
                                       ", so the same text matches in many ways.")
                strict_seen.append(starts)
            seen |= alt_first
            first |= alt_first
            nullable = nullable or alt_nullable
        if empty > 1:
            self.ambiguous("two alternatives inside a repetition can both match empty text.")
        return first, nullable

    def repeat(self, av: Any, in_loop: bool, follow: int, loop_follow: int) -> tuple[int, bool]:
        low, high, body = av
        items = list(body)
        body_first, body_nullable = _Summary(self.ignore_case).sequence(items, False, ALL, 0)
        if in_loop and self.strict and low != high and body_first & loop_follow & FINE:
            self.ambiguous(f"a repeated part that can match {show(body_first & loop_follow)} is followed, inside "
                           "an outer repetition, by something that can match the same, so the same text splits in "
                           "many ways.")
        open_ended = high == sre.MAXREPEAT or high > LARGE_REPEAT
        if not open_ended:
            first, nullable = self.sequence(items, in_loop, follow, loop_follow)
            return first, nullable or low == 0
        if self.strict:
            self.loops.append(items)
            if body_nullable and in_loop:
                self.ambiguous("a repetition of something that can match empty text is itself repeated.")
        # Inside the loop, what follows the body is the body again, or whatever follows the loop.
        body_loop_follow = body_first | (loop_follow if in_loop else 0)
        first, nullable = self.sequence(items, True, body_first | follow, body_loop_follow)
        if first & follow & COARSE:
            if in_loop:
                self.fail(NESTED)
            else:
                self.overlapping += 1
        return first, nullable or low == 0

    def charset(self, op: Any, av: Any) -> int:
        """The characters one single-character item matches, on both alphabets (see COARSE and FINE)."""
        return charset(op, tuple(av) if isinstance(av, list) else av, self.ignore_case)

    def fail(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason

    def ambiguous(self, detail: str) -> None:
        if not self.ambiguity:
            self.ambiguity = detail


class _Summary(_Walker):
    """First set and nullability only: nothing recorded, and no second walk of nested repetitions (which would
    make the check itself exponential in the nesting depth)."""

    def repeat(self, av: Any, in_loop: bool, follow: int, loop_follow: int) -> tuple[int, bool]:
        low, _high, body = av
        first, nullable = self.sequence(list(body), False, ALL, 0)
        return first, nullable or low == 0

    def branch(self, alternatives: list[list[tuple[Any, Any]]], in_loop: bool, follow: int, loop_follow: int,
               conditional: bool = False) -> tuple[int, bool]:
        first = 0
        nullable = False
        for alternative in alternatives:
            alt_first, alt_nullable = self.sequence(alternative, False, ALL, 0)
            first |= alt_first
            nullable = nullable or alt_nullable
        return first, nullable

    def fail(self, reason: str) -> None:
        pass

    def ambiguous(self, detail: str) -> None:
        pass


class _Inputs:
    """Adversarial probe inputs: the pattern's lead-in, one repeated part many times, then a character that fails."""

    def __init__(self, walker: _Walker) -> None:
        self.walker = walker

    def sample(self, items: list[Any], depth: int = 0) -> str:
        """A short string built from the items (one round of each repetition, or its minimum)."""
        out: list[str] = []
        for op, av in items:
            if op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY):
                out.append(pick(self.walker.charset(op, av)))
            elif depth >= 20:
                continue
            elif op is sre.SUBPATTERN:
                out.append(self.sample(list(av[3]), depth + 1))
            elif op is _ATOMIC:
                out.append(self.sample(list(av), depth + 1))
            elif op in _REPEATS or op is _POSSESSIVE:
                low, _high, body = av
                out.append(self.sample(list(body), depth + 1) * max(1, min(low, 4)))
            elif op is sre.BRANCH and av[1]:
                out.append(self.sample(list(av[1][0]), depth + 1))
        return "".join(out)

    def build(self, parsed: list[Any]) -> list[str]:
        lead = ""
        for index, (op, _av) in enumerate(parsed):
            if op in _REPEATS or op is sre.BRANCH or op is sre.SUBPATTERN:
                lead = self.sample(parsed[:index])
                break
        units = {self.sample(body) for body in self.walker.loops}
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


@functools.lru_cache(maxsize=2048)
def _slow_input(pattern: str, inputs: tuple[str, ...]) -> str | None:
    """The (shortened) input on which the pattern went over its time budget, or None. Remembered per pattern:
    the probe costs a process."""
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
