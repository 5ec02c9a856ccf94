"""protocols.apidocs.learn: samples merged per route, method, path template and status, within the template cap."""
from __future__ import annotations

import json

from protocols.apidocs.learn import Learner
from protocols.apidocs.sampler import RawSample

PATTERN = (None, "a", "b")  # /api/{a}/{b}


def sample(path: str, status: int = 200, query: bytes = b"", response: object = None, request: object = None,
           method: str = "GET") -> RawSample:
    return RawSample("api", PATTERN, method, path, query, "application/json" if request is not None else "",
                     json.dumps(request).encode() if request is not None else None, False, status,
                     "application/json", json.dumps(response).encode() if response is not None else None, False)


def test_samples_of_one_template_and_status_merge_into_one_operation():
    learner = Learner()
    for user in (1, 2, 3):
        learner.add(sample(f"/api/users/{user}", response={"id": user}))
    learner.add(sample("/api/users/9", status=404, response={"detail": "nope"}))
    operations = learner.take()
    assert set(operations) == {("api", "GET", "/api/users/{b}", 200), ("api", "GET", "/api/users/{b}", 404)}
    ok = operations[("api", "GET", "/api/users/{b}", 200)]
    assert ok["samples"] == 3
    assert ok["path"]["b"]["types"]["integer"] == {"n": 3, "min": 1, "max": 3}
    assert learner.take() == {}  # taken


def test_query_parameters_are_an_object_of_their_names():
    learner = Learner()
    learner.add(sample("/api/users/1", query=b"limit=10&tag=a&tag=b"))
    learner.add(sample("/api/users/1", query=b"limit=20"))
    (operation,) = learner.take().values()
    query = operation["query"]["types"]["object"]
    assert query["n"] == 2 and query["properties"]["limit"]["n"] == 2 and query["properties"]["tag"]["n"] == 1
    assert list(query["properties"]["tag"]["types"]) == ["array"]


def test_a_body_that_is_not_json_is_counted_as_invalid():
    learner = Learner()
    broken = sample("/api/users/1")
    broken.response_body = b"{not json"
    learner.add(broken)
    (operation,) = learner.take().values()
    assert operation["response"]["invalid"] == 1 and operation["response"]["json"] is None


def test_templates_per_route_are_capped_and_what_is_beyond_is_dropped_and_counted():
    learner = Learner(max_templates=3)
    for word in ("a", "b", "c", "d", "e"):
        learner.add(sample(f"/api/{word}/x"))
    assert len(learner.take()) == 3 and learner.dropped == 2


def test_what_a_store_could_not_write_is_given_back_and_merged():
    learner = Learner()
    learner.add(sample("/api/users/1", response={"id": 1}))
    failed = learner.take()
    learner.add(sample("/api/users/2", response={"id": 2}))
    learner.give_back(failed)
    (operation,) = learner.take().values()
    assert operation["samples"] == 2
