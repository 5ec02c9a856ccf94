"""check_regex: compile errors, the ambiguous shapes that backtrack exponentially, and the timing probe."""
from __future__ import annotations

import time

import pytest

from protocols.table import RouteSpec, RouteTable
from routes import regex_safety
from routes.regex_safety import check_regex


@pytest.mark.parametrize("pattern", [
    "(a+)+b", "(a*)*", "(.*)*", "(a|a)*", "(a|aa)+", "(a|b|ab)*", r"(\w+\s?)*$", r"(\s?\w+)*$", r"^(\d+)*$",
    "(x+x+)+y", "(ab|a.)*", "(?:a?){20}a{20}", r"([a-z]+)*\.com",
])
def test_nested_or_overlapping_repetitions_are_refused_without_running_them(pattern):
    started = time.perf_counter()
    message = check_regex(pattern)
    assert message is not None and "backtrack catastrophically" in message
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize("pattern", [
    r"^/api/v(\d+)/users/(\d+)$", r"^/(/[a-z]+)+$", r"(\w+\s)*", r"(?i)^bearer\s+(.+)$", r"\s*,\s*",
    r"^(?:[^/]+/)*[^/]+\.json$", r"([a-z0-9-]+\.)*example\.com", "(?>a+)+b", "a++b", "(foo|bar)+", "abc",
    r"^(.*?)/(.*?)/(.*?)$", r"(?P<x>a)(?P=x)+",
])
def test_ordinary_patterns_are_accepted(pattern):
    assert check_regex(pattern) is None


def test_a_polynomial_blow_up_is_caught_by_the_timing_probe():
    message = check_regex(".*a.*a.*a.*a.*b")
    assert message is not None and "too slow on input like" in message


def test_the_probe_runs_in_a_child_and_gives_up_at_its_timeout(monkeypatch):
    monkeypatch.setattr(regex_safety, "PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(regex_safety, "PROBE_BUDGET_S", 60.0)
    started = time.perf_counter()
    # Not cached: the pattern differs from the previous test's.
    assert "too slow" in (check_regex(".*b.*b.*b.*b.*c") or "")
    assert time.perf_counter() - started < 3


def test_a_compile_error_names_the_position():
    assert check_regex("(unclosed") == "Not a valid regular expression: missing ), unterminated subpattern at " \
                                       "position 0."


def test_a_pattern_that_is_not_a_string_or_too_long_is_refused():
    assert check_regex(42) == "Must be a regular expression (a string)."
    assert "longer than" in (check_regex("a" * (regex_safety.MAX_PATTERN_LENGTH + 1)) or "")


def test_route_paths_are_literal_segments_matched_by_a_trie_not_regexes():
    # A path that would be catastrophic as a regex is only text to the matcher.
    spec = RouteSpec(id=1, name="r", external_path="/(a+)+b/{id}", methods=("GET",), backends=())
    table = RouteTable([spec])
    started = time.perf_counter()
    assert table.match("GET", "", "/(a+)+b/" + "a" * 5000).route is not None
    assert table.match("GET", "", "/" + "a" * 5000 + "!/x").route is None
    assert time.perf_counter() - started < 0.05
