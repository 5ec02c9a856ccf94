"""Character sets of parsed regular-expression items as bit masks, for protocols.regex_safety's walk.

Two sets overlap when their masks intersect. Each mask covers two sample alphabets at once, in one int, and each
alphabet decides its own rules (the rules of the two checks regex_safety replaced, so that it refuses exactly
what they refused together):
- COARSE: ASCII, three non-ASCII letters, and one "anything else" slot (OTHER) that errs on the side of overlap;
  it decides nested repetitions, alternatives and the cubic count.
- FINE: Latin-1 and a few wider letters, digits and spaces, with no such slot; it decides the stricter rules for
  any variable-length part inside a loop, and supplies the characters shown in messages and probe inputs.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from re import _constants as sre  # type: ignore[attr-defined]
from typing import Any

_SAMPLES = [chr(code) for code in range(128)] + ["\u00e9", "\u0130", "\u4e2d"]
OTHER = 1 << len(_SAMPLES)  # characters outside the samples
COARSE = (OTHER << 1) - 1
_FINE_SHIFT = len(_SAMPLES) + 1
_UNIVERSE = [chr(code) for code in range(256)] + [
    "\u0100", "\u03b1", "\u0416", "\u0660", "\u2028", "\u3000", "\u4e2d", "\U0001f600"]
_FINE_ALL = (1 << len(_UNIVERSE)) - 1
FINE = _FINE_ALL << _FINE_SHIFT
ALL = COARSE | FINE


@functools.lru_cache(maxsize=4096)
def charset(op: Any, av: Any, ignore_case: bool) -> int:
    """The mask of one single-character item (LITERAL, NOT_LITERAL, ANY, or IN with its items as a tuple)."""
    return _coarse(ignore_case, op, av) | _fine(ignore_case, op, av) << _FINE_SHIFT


def _coarse(ignore_case: bool, op: Any, av: Any) -> int:
    if op is sre.ANY:
        return COARSE
    if op is sre.LITERAL:
        return _samples(ignore_case, lambda c: ord(c) == av) or OTHER
    if op is sre.NOT_LITERAL:
        return _samples(ignore_case, lambda c: ord(c) != av) | OTHER
    negate = bool(av) and av[0][0] is sre.NEGATE
    tests: list[Callable[[str], bool]] = []
    broad = False
    for kind, value in av[1:] if negate else av:
        if kind is sre.LITERAL:
            tests.append(functools.partial(_is_code, value))
        elif kind is sre.RANGE:
            tests.append(functools.partial(_in_range, value[0], value[1]))
            broad = broad or value[1] > 127
        elif kind is sre.CATEGORY:
            test, wide = _COARSE_CATEGORIES.get(value, (_anything, True))
            tests.append(test)
            broad = broad or wide
        else:
            tests.append(_anything)
            broad = True
    mask = _samples(ignore_case, lambda c: any(test(c) for test in tests))
    if negate:
        return (COARSE & ~mask) | OTHER
    return mask | (OTHER if broad or not mask else 0)


def _samples(ignore_case: bool, test: Callable[[str], bool]) -> int:
    mask = 0
    for index, char in enumerate(_SAMPLES):
        if test(char) or (ignore_case and any(len(v) == 1 and test(v) for v in (char.lower(), char.upper()))):
            mask |= 1 << index
    return mask


def _fine(ignore_case: bool, op: Any, av: Any) -> int:
    if op is sre.ANY:
        return _FINE_ALL
    if op is sre.LITERAL:
        return _fold(ignore_case, av)
    if op is sre.NOT_LITERAL:
        return _FINE_ALL & ~_fold(ignore_case, av)
    negate = bool(av) and av[0][0] is sre.NEGATE
    mask = 0
    for kind, value in av[1:] if negate else av:
        if kind is sre.LITERAL:
            mask |= _fold(ignore_case, value)
        elif kind is sre.RANGE:
            mask |= _universe(functools.partial(_in_folded_range, value[0], value[1], ignore_case))
        elif kind is sre.CATEGORY:
            mask |= _universe(_FINE_CATEGORIES.get(value, _anything))
        else:
            mask |= _FINE_ALL
    return _FINE_ALL & ~mask if negate else mask


def _fold(ignore_case: bool, code: int) -> int:
    char = chr(code)
    variants = {char, char.lower(), char.upper(), char.swapcase()} if ignore_case else {char}
    return _universe(lambda c: c in variants)


def _is_code(code: int, char: str) -> bool:
    return ord(char) == code


def _in_range(low: int, high: int, char: str) -> bool:
    return low <= ord(char) <= high


def _in_folded_range(low: int, high: int, ignore_case: bool, char: str) -> bool:
    variants = (char, char.lower(), char.upper()) if ignore_case else (char,)
    return any(len(v) == 1 and low <= ord(v) <= high for v in variants)


def _anything(char: str) -> bool:
    return True


def _universe(test: Callable[[str], bool]) -> int:
    """The fine alphabet's characters for which `test` holds."""
    return sum(1 << index for index, char in enumerate(_UNIVERSE) if test(char))


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


_FINE_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    sre.CATEGORY_DIGIT: str.isdecimal,
    sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
    sre.CATEGORY_SPACE: str.isspace,
    sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre.CATEGORY_WORD: _is_word,
    sre.CATEGORY_NOT_WORD: lambda c: not _is_word(c),
    sre.CATEGORY_LINEBREAK: lambda c: c == "\n",
    sre.CATEGORY_NOT_LINEBREAK: lambda c: c != "\n",
}
# Every category reaches beyond the samples (non-ASCII digits, spaces, letters): each also has the "other" slot.
_COARSE_CATEGORIES: dict[Any, tuple[Callable[[str], bool], bool]] = {
    sre.CATEGORY_DIGIT: (str.isdecimal, True),
    sre.CATEGORY_NOT_DIGIT: (lambda c: not c.isdecimal(), True),
    sre.CATEGORY_SPACE: (str.isspace, True),
    sre.CATEGORY_NOT_SPACE: (lambda c: not c.isspace(), True),
    sre.CATEGORY_WORD: (_is_word, True),
    sre.CATEGORY_NOT_WORD: (lambda c: not _is_word(c), True),
}


def _fine_chars(mask: int) -> list[str]:
    fine = mask >> _FINE_SHIFT
    return [char for index, char in enumerate(_UNIVERSE) if fine >> index & 1]


def show(mask: int) -> str:
    shown = _fine_chars(mask)
    text = "".join(c for c in shown[:5] if c.isprintable()) or "such characters"
    return f"'{text}…'" if len(shown) > 5 else f"'{text}'"


def pick(mask: int) -> str:
    chars = _fine_chars(mask)
    for preferred in "a0A_ -./":
        if preferred in chars:
            return preferred
    return min(chars) if chars else "a"
