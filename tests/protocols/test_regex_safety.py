"""protocols.regex_safety, the one catastrophic-regex check: the shapes that backtrack exponentially or cubically,
back-references and deep nesting are refused without running the pattern, ordinary patterns pass, and while
saving the timing probe catches the polynomial blow-ups a static check misses."""
from __future__ import annotations

import time

import pytest

from protocols import regex_safety
from protocols.regex_safety import timing_probe, unsafe_reason
from protocols.table import RouteSpec, RouteTable


@pytest.mark.parametrize("pattern", [
    r"(a+)+$", r"(\w+\s?)*$", r"(.*,)*x", r"^(a*)*$", r"(x+x+)+y", r"(a|a)*b", r"(a|b|ab)*c", "(a+)+b", "(a*)*",
    "(.*)*", "(a|a)*", "(a|b|ab)*", r"(\s?\w+)*$", r"^(\d+)*$", "(ab|a.)*", r"([a-z]+)*\.com",
])
def test_nested_or_overlapping_repetitions_are_refused_without_running_them(pattern):
    # Outside timing_probe() no pattern is run: the refusal comes from reading its parse tree alone.
    assert unsafe_reason(pattern)


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(x+x+)+y", r"([a-z]+)*\.com"])
def test_a_nested_repetition_is_named_in_the_message(pattern):
    assert unsafe_reason(pattern).startswith("A repetition inside another repetition can match the same text")


@pytest.mark.parametrize("pattern", [r"(a|a)*b", r"(a|b|ab)*c", "(ab|a.)*"])
def test_overlapping_alternatives_in_a_repetition_are_named_in_the_message(pattern):
    assert unsafe_reason(pattern).startswith("Alternatives inside a repetition can match the same text")


# Each of these was refused by only one of the two checks this module replaced; both ran on every save.
@pytest.mark.parametrize(("pattern", "message"), [
    # Formerly the control plane's only: a variable-length part inside a loop running into the loop's next round.
    ("(a|aa)+", "The regular expression can backtrack catastrophically: alternatives inside a repetition can "
                "both start with 'a'"),
    ("(?:a?){20}a{20}", "The regular expression can backtrack catastrophically: a repeated part that can match "
                        "'a' is followed, inside an outer repetition"),
    ("(?:a|aa){1,30}b", "The regular expression can backtrack catastrophically:"),
    # Formerly the data plane's only: nested repetitions that a search may end inside, cubic time, back-references.
    (r"^/(/[a-z]+)+$", "A repetition inside another repetition"),
    (r"(\w+\s)*", "A repetition inside another repetition"),
    (r"^(.*?)/(.*?)/(.*?)$", "Three or more open-ended repetitions"),
    (r"(.*)/(.*)/(.*)x", "Three or more open-ended repetitions"),
    (r"(?P<x>a)(?P=x)+", "Back-references"),
])
def test_a_pattern_either_former_check_refused_is_refused(pattern, message):
    assert unsafe_reason(pattern).startswith(message)


@pytest.mark.parametrize("pattern", [
    r"^/api/v1/(.+)$", r"^(.*)-(.*)$", r"(\d+\.)*\d+", r"(?i)^bearer\s+(.+)$", r"[^/]+/[^/]+/[^/]+",
    r"(?:GET|POST)+", r"(?>a+)+", r"a++b", r"^/api/v(\d+)/users/(\d+)$", r"\s*,\s*", r"^(?:[^/]+/)*[^/]+\.json$",
    r"([a-z0-9-]+\.)*example\.com", "(?>a+)+b", "(foo|bar)+", "abc", r"^/users/(?P<id>\d+)$",
])
def test_ordinary_patterns_are_accepted(pattern):
    assert unsafe_reason(pattern) == ""


def test_a_case_insensitive_range_is_judged_rather_than_crashing_the_check():
    # The control plane's former check failed with TypeError on (?i)[a-z]: 'ß'.upper() is two characters.
    assert unsafe_reason(r"(?i)^[a-z]+$") == ""
    assert unsafe_reason(r"(?i)([a-z]+)*$")


def test_a_pattern_nested_too_deeply_to_walk_is_refused_with_a_reason():
    assert unsafe_reason("(" * 199 + "a" + "){2}" * 199) == regex_safety.TOO_DEEP


def test_a_compile_error_names_the_position():
    assert unsafe_reason("(unclosed") == "Not a valid regular expression: missing ), unterminated subpattern at " \
                                         "position 0."


def test_a_polynomial_blow_up_is_caught_by_the_timing_probe_while_saving():
    assert unsafe_reason("x*x*x*y") == ""  # two overlaps each: the static check lets it through
    with timing_probe():
        message = unsafe_reason("x*x*x*y")
    assert message.startswith("The regular expression is too slow on input like 'xxxxxxxxxx")


def test_a_pattern_without_a_repetition_is_not_probed(monkeypatch):
    monkeypatch.setattr(regex_safety, "PROBE_BUDGET_S", -1.0)  # any probe would say "too slow"
    with timing_probe():
        assert unsafe_reason("^/health$") == ""


def test_the_probe_runs_in_a_child_and_gives_up_at_its_timeout(monkeypatch):
    monkeypatch.setattr(regex_safety, "PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(regex_safety, "PROBE_BUDGET_S", 60.0)
    started = time.perf_counter()
    with timing_probe():
        # Not remembered: the pattern differs from the previous tests'.
        assert "too slow" in unsafe_reason("y*y*y*z")
    assert time.perf_counter() - started < 3


def test_route_paths_are_literal_segments_matched_by_a_trie_not_regexes():
    # A path that would be catastrophic as a regex is only text to the matcher.
    spec = RouteSpec(id=1, name="r", external_path="/(a+)+b/{id}", methods=("GET",), backends=())
    table = RouteTable([spec])
    # As a regex, either input would backtrack for longer than the suite's timeout.
    assert table.match("GET", "", "/(a+)+b/" + "a" * 5000).route is not None
    assert table.match("GET", "", "/" + "a" * 5000 + "!/x").route is None
