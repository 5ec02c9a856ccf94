"""Client paths under a route's root: normalised, confined, and free of anything that could end a command."""
from __future__ import annotations

import pytest

from protocols.ftp.paths import PathRejected, confine, route_root


def test_the_root_is_the_clients_slash() -> None:
    assert confine("/srv/data", "/reports/a.csv") == ("/srv/data/reports/a.csv", "/reports/a.csv")
    assert confine("/srv/data", "/") == ("/srv/data", "/")


def test_relative_paths_start_at_the_root() -> None:
    assert confine("/", "reports/a.csv") == ("/reports/a.csv", "/reports/a.csv")


def test_dot_segments_and_repeated_slashes_are_normalised() -> None:
    assert confine("/", "//a/./b//c/../d") == ("/a/b/d", "/a/b/d")


@pytest.mark.parametrize("path", ["..", "/..", "/a/../..", "a/b/../../../etc/passwd"])
def test_climbing_above_the_root_is_refused(path: str) -> None:
    with pytest.raises(PathRejected, match="climbs out"):
        confine("/srv/data", path)


@pytest.mark.parametrize("path", ["/a\r\nDELE /b", "/a\nb", "/a\x00b", "/a\tb", "/a\x7fb"])
def test_control_characters_are_refused(path: str) -> None:
    with pytest.raises(PathRejected, match="control character"):
        confine("/", path)


def test_backslashes_are_refused() -> None:
    with pytest.raises(PathRejected, match="backslash"):
        confine("/", "..\\..\\windows")


def test_overlong_paths_are_refused() -> None:
    with pytest.raises(PathRejected, match="longer"):
        confine("/", "/a" * 600)


def test_the_route_root_comes_from_the_policy_then_the_internal_path() -> None:
    assert route_root("/srv/ftp", "/ignored", {}) == "/srv/ftp"
    assert route_root("", "/home/alice", {}) == "/home/alice"
    assert route_root("", "", {}) == "/"


def test_a_root_built_from_a_parameter_stays_one_segment() -> None:
    assert route_root("", "/home/bob", {"user": "bob"}) == "/home/bob"
    with pytest.raises(PathRejected):
        route_root("", "/home/..%2F..", {"user": "..%2F.."})
    with pytest.raises(PathRejected):
        route_root("", "/home/a%2Fb", {"user": "a%2Fb"})
