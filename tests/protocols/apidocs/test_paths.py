"""protocols.apidocs.paths: which segments of a route's paths become parameters."""
from __future__ import annotations

from protocols.apidocs.paths import Templater, collapse, is_id, split

CATCH_ALL = (None, "a", "b")  # /api/{a}/{b}


def test_ids_are_recognised():
    assert is_id("42") and is_id("3f2b8c1e-9a4d-4b7e-8f10-2c3d4e5f6a7b") and is_id("a3f9c2e1d0b4")
    assert is_id("usr_8f3a9c2e77aa12bc") and is_id("order-12345") and is_id("cache:users:3f9a2c41d0b7")
    assert not is_id("routes") and not is_id("learned-openapi") and not is_id("deadbeef")
    assert not is_id("v1") and not is_id("oauth2") and not is_id("2xx")


def test_an_id_makes_the_segment_a_parameter_at_once_named_as_in_the_route():
    templater = Templater()
    assert templater.template(split("/api/routes/42/"), CATCH_ALL) == ("/api/routes/{b}/", {"b": "42"})


def test_words_stay_literal_until_many_distinct_ones_appear_under_the_same_prefix():
    templater = Templater(many=3)
    templates = [templater.template(split(f"/api/users/{name}"), CATCH_ALL)[0]
                 for name in ("alice", "bob", "carol")]
    assert templates == ["/api/users/alice", "/api/users/bob", "/api/users/carol"]
    assert templater.template(split("/api/users/dave"), CATCH_ALL)[0] == "/api/users/{b}"
    assert templater.template(split("/api/users/alice"), CATCH_ALL)[0] == "/api/users/{b}"
    # Another prefix keeps its own count.
    assert templater.template(split("/api/groups/staff"), CATCH_ALL)[0] == "/api/groups/staff"


def test_static_segments_of_the_route_are_never_parameters():
    templater = Templater(many=0)
    assert templater.template(split("/api/42"), (None, None)) == ("/api/42", {})


def test_collapse_makes_templates_of_several_processes_consistent():
    learned = [f"/api/users/{name}" for name in ("u", "v", "w", "x")] + ["/api/users/{b}", "/api/other"]
    final = collapse(learned, many=3)
    assert {final[path] for path in learned if path.startswith("/api/users")} == {"/api/users/{b}"}
    assert final["/api/other"] == "/api/other"
