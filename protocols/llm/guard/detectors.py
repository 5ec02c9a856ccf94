"""The prompt guard's detectors (card numbers, IBANs, e-mail addresses, phone numbers), in time linear in the text.

Every scan is one re2 pass (a finite automaton, no backtracking) for candidates, then a checksum or a count over
each candidate's own characters in Python, so no input can make a scan slower than a constant per character.
They catch what is pasted by mistake, with few false alarms; a client set on hiding a number ("4.1.1.1 ...",
"four one one one") is not what they are for.

- `card`: 13 to 19 digits, single spaces or dashes allowed between them, starting with 2 to 6 (the issuer ranges of
  Visa, Mastercard, Amex, Discover, JCB, Diners and UnionPay), passing the Luhn check. A longer run of digit
  groups ("order 12 4111 1111 1111 1111") is tried at its separators, so a card number next to other numbers is
  still found; a run of more than 19 digits with no separator, or one glued to a letter ("DE89 3704 ...",
  "INV4111..."), is an identifier, not a card.
- `iban`: a country of the IBAN registry, two check digits, then exactly that country's length of letters and
  digits (single spaces allowed), passing the mod-97 check; lower case is accepted.
- `email`: a local part of letters, digits (any script) and `._%+-`, `@`, dot-separated domain labels (letters,
  digits, inner hyphens), a top-level domain of 2 letters or more: what people write (quoted local parts and
  IP-address domains are not looked for).
- `phone`: international format only: `+`, not glued to a letter or digit before it, a country code not starting
  with 0, then 8 to 15 digits in all (E.164's maximum) with spaces, dots, dashes or parentheses between them, as in
  `+44 (0) 20 7946 0958`. A number without `+` is not looked for: ten digits are as often an order number as a
  phone number.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2

KINDS = ("card", "iban", "email", "phone")
# What a client is told was found (never the text itself).
DESCRIPTIONS = {"card": "a card number", "iban": "an IBAN", "email": "an e-mail address", "phone": "a phone number"}

OPTIONS = re2.Options()
OPTIONS.log_errors = False  # a refused pattern is reported by path; re2's own log line would only repeat it on stderr


@dataclass(frozen=True, slots=True)
class Found:
    """What a detector found: its kind and where it is in the text (character offsets, end excluded)."""

    kind: str
    start: int
    end: int


# --- card --------------------------------------------------------------------------------------------------------
# Runs of at least 13 digits with one space or dash at most between two digits; which part of a run is a card
# number is decided at its separators below.
_CARD_RUN = re2.compile(r"[0-9](?:[ -]?[0-9]){12,}", OPTIONS)
_CARD_MIN, _CARD_MAX = 13, 19
_CARD_FIRST = frozenset((2, 3, 4, 5, 6))
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: a doubled digit, its digits summed


def _cards(text: str) -> Iterator[Found]:
    for match in _CARD_RUN.finditer(text):
        start, end = match.span()
        # Digits glued to a letter belong to an identifier (an IBAN's "DE89 3704 ...", a reference "INV4111...").
        if (start and _glued(text[start - 1])) or (end < len(text) and _glued(text[end])):
            continue
        yield from _cards_in_run(match.group(), start)


def _glued(char: str) -> bool:
    return char.isalnum() or char == "_"


def _cards_in_run(run: str, offset: int) -> Iterator[Found]:
    digits: list[int] = []
    where: list[int] = []  # the offset in `run` of each digit
    starts: list[int] = []  # the digit index where each separated group starts
    for i, char in enumerate(run):
        if char not in " -":
            if not where or where[-1] != i - 1:
                starts.append(len(digits))
            digits.append(ord(char) - 48)
            where.append(i)
    # Two running sums of the Luhn terms, one doubling the digits at even indexes, one at odd ones, so that any
    # window's checksum is a difference of two prefix sums: O(1) per window, whatever the run holds.
    even = [0]
    odd = [0]
    for i, digit in enumerate(digits):
        even.append(even[-1] + (_DOUBLED[digit] if i % 2 == 0 else digit))
        odd.append(odd[-1] + (digit if i % 2 == 0 else _DOUBLED[digit]))
    ends = set(starts[1:]) | {len(digits)}  # a window ends where a group ends
    taken = 0
    for start in starts:
        if start < taken or digits[start] not in _CARD_FIRST:
            continue
        # The longest window first, so that a separated card number is masked whole.
        for end in range(min(start + _CARD_MAX, len(digits)), start + _CARD_MIN - 1, -1):
            if end not in ends:
                continue
            # Luhn doubles every second digit counting from the last one, which is not doubled.
            sums = odd if (end - 1) % 2 == 0 else even
            if (sums[end] - sums[start]) % 10 == 0:
                yield Found("card", offset + where[start], offset + where[end - 1] + 1)
                taken = end
                break


# --- iban --------------------------------------------------------------------------------------------------------
# The IBAN registry's countries and the length of their IBANs (country code and check digits included).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}


def _iban_pattern() -> Any:
    # One alternative per length, so a candidate is exactly as long as its country's IBANs and never runs into
    # the next word (or the next IBAN): re2 then needs no second pass to trim it.
    by_length: dict[int, list[str]] = {}
    for country, length in IBAN_LENGTHS.items():
        by_length.setdefault(length, []).append(country)
    alternatives = [f"(?:{'|'.join(sorted(countries))})[0-9]{{2}}(?: ?[A-Z0-9]){{{length - 4}}}"
                    for length, countries in sorted(by_length.items())]
    return re2.compile(rf"(?i)\b(?:{'|'.join(alternatives)})\b", OPTIONS)


_IBAN = _iban_pattern()


def iban_valid(candidate: str) -> bool:
    """The ISO 13616 check: the IBAN, its first four characters moved to the end, letters as 10-35, mod 97 is 1."""
    compact = candidate.replace(" ", "").upper()
    if not 2 <= int(compact[2:4]) <= 98:  # 00, 01 and 99 are never issued
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _ibans(text: str) -> Iterator[Found]:
    for match in _IBAN.finditer(text):
        if iban_valid(match.group()):
            yield Found("iban", match.start(), match.end())


# --- email -------------------------------------------------------------------------------------------------------
# Letters and digits of any script, since people write internationalised addresses (jürgen@bücher.example). No
# bounded counters (a label's 63, a top-level domain's {2,63}): over Unicode classes they outgrow re2's automaton,
# which then falls back to an engine ten times slower on every prompt.
_EMAIL = re2.compile(
    r"[\p{L}\p{N}._%+\-]+@(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+\p{L}{2,}", OPTIONS)


def _emails(text: str) -> Iterator[Found]:
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        yield Found("email", match.start(), match.end())


# --- phone -------------------------------------------------------------------------------------------------------
# Group 1 is the number; what comes before it only makes sure the `+` does not follow a letter or a digit
# (`x+12345678` is arithmetic). 8 to 15 digits: the first, then 7 to 14 more.
_PHONE = re2.compile(r"(?:^|[^A-Za-z0-9+])(\+[1-9](?:[ .()\-]{0,2}[0-9]){7,14})\b", OPTIONS)


def _phones(text: str) -> Iterator[Found]:
    if "+" not in text:
        return
    for match in _PHONE.finditer(text):
        yield Found("phone", match.start(1), match.end(1))


_SCANS = {"card": _cards, "iban": _ibans, "email": _emails, "phone": _phones}


def find(kinds: tuple[str, ...], text: str) -> list[Found]:
    """What the detectors `kinds` find in `text`, in order, without overlaps (the earlier, then the longer, wins)."""
    found = sorted((item for kind in kinds for item in _SCANS[kind](text)), key=lambda f: (f.start, -f.end))
    kept: list[Found] = []
    for item in found:
        if not kept or item.start >= kept[-1].end:
            kept.append(item)
    return kept


def mask(text: str, found: list[Found]) -> str:
    """The text with each finding (from `find`: in order, not overlapping) replaced by `[kind]`."""
    parts: list[str] = []
    at = 0
    for item in found:
        parts.append(text[at:item.start])
        parts.append(f"[{item.kind}]")
        at = item.end
    parts.append(text[at:])
    return "".join(parts)
