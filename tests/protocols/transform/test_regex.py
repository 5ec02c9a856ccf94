"""Patterns of transformation rules: catastrophic ones are refused before they can stall a worker (the cases of
the check itself are in tests/protocols/test_regex_safety.py), safe ones pass, and `$1` / `${name}` replacements
behave as in the earlier gateway."""
from __future__ import annotations

import re
import time

import pytest

from protocols.regex_safety import unsafe_reason
from protocols.transform.regex import MAX_PATTERN_LENGTH, compile_safe, compile_template, expand


@pytest.mark.parametrize("pattern", [
    r"(a+)+$", r"(\w+\s?)*$", r"(.*,)*x", r"^(a*)*$", r"(x+x+)+y", r"(a|a)*b", r"(a|b|ab)*c",
    r"(.*)/(.*)/(.*)x",
])
def test_a_pattern_that_backtracks_catastrophically_is_refused(pattern):
    assert unsafe_reason(pattern)
    with pytest.raises(ValueError):
        compile_safe(pattern)


@pytest.mark.parametrize("pattern", [
    r"^/api/v1/(.+)$", r"^(.*)-(.*)$", r"(\d+\.)*\d+", r"(?i)^bearer\s+(.+)$", r"[^/]+/[^/]+/[^/]+",
    r"(?:GET|POST)+", r"(?>a+)+", r"a++b", r"^/users/(?<id>\d+)$",
])
def test_a_common_pattern_is_accepted(pattern):
    assert compile_safe(pattern).pattern


def test_a_refused_pattern_really_is_slow_and_an_accepted_one_is_not():
    # The check's premise, measured: (a+)+$ takes seconds on 26 characters, ^(.*)-(.*)$ nothing on 8 KiB.
    started = time.perf_counter()
    assert re.compile(r"(a+)+$").match("a" * 22 + "!") is None
    slow = time.perf_counter() - started
    started = time.perf_counter()
    assert compile_safe(r"^(.*)-(.*)$").match("a" * 8192) is None
    assert time.perf_counter() - started < slow


def test_back_references_are_refused():
    with pytest.raises(ValueError, match="Back-references"):
        compile_safe(r"(a)\1")


def test_an_invalid_pattern_says_why():
    with pytest.raises(ValueError) as caught:
        compile_safe("(unclosed")
    assert str(caught.value) == "Not a valid regular expression: missing ), unterminated subpattern at position 0."


def test_a_pattern_that_is_not_a_string_or_too_long_is_refused():
    with pytest.raises(ValueError, match="^A regular expression is required here.$"):
        compile_safe(42)
    with pytest.raises(ValueError, match="^The pattern is longer than 1000 characters.$"):
        compile_safe("a" * (MAX_PATTERN_LENGTH + 1))


def test_a_pattern_nested_too_deeply_is_refused_with_a_reason_not_an_exception():
    with pytest.raises(ValueError, match="^Not a usable regular expression: it nests too deeply.$"):
        compile_safe("(" * 199 + "a" + "){2}" * 199)


def test_deep_nesting_is_checked_quickly():
    pattern = "(" * 60 + "a" + ")*" * 60
    started = time.perf_counter()
    with pytest.raises(ValueError):
        compile_safe(pattern)
    assert time.perf_counter() - started < 1


def test_the_earlier_gateways_named_group_syntax_works():
    regex = compile_safe(r"^/users/(?<id>\d+)$")
    assert expand(compile_template("/people/${id}", regex), regex.match("/users/42")) == "/people/42"


def test_replacement_groups_dollar_signs_and_missing_groups():
    regex = compile_safe(r"(\d+)\.(?P<minor>\d+)")
    match = regex.search("curl 7.81")
    assert expand(compile_template("v$1-${minor}-$$", regex), match) == "v7-81-$"
    with pytest.raises(ValueError, match=r"write \$\{1\}a"):
        compile_template("$1a", regex)
    with pytest.raises(ValueError, match="has 2 group"):
        compile_template("$3", regex)
