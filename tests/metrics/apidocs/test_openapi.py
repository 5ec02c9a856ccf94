"""metrics.apidocs.openapi: the OpenAPI 3 document built from learned operations."""
from __future__ import annotations

import json

from metrics.apidocs.openapi import Learned, learned_document, schema_of
from protocols.apidocs.learn import Learner
from protocols.apidocs.sampler import RawSample
from protocols.apidocs.shapes import merge, shape_of


def shapes_of(*values: object) -> dict:
    shape = None
    for value in values:
        shape = merge(shape, shape_of(value))
    return shape


def document(*samples: RawSample) -> dict:
    learner = Learner()
    for one in samples:
        learner.add(one)
    return learned_document("api", [Learned(k[1], k[2], k[3], v) for k, v in learner.take().items()])


def raw(path: str, status: int, query: bytes = b"", request: object = None, response: object = None,
        method: str = "POST") -> RawSample:
    return RawSample("api", (None, "a", "b"), method, path, query, "application/json" if request is not None else "",
                     json.dumps(request).encode() if request is not None else None, False, status,
                     "application/json" if response is not None else "",
                     json.dumps(response).encode() if response is not None else None, False)


def test_a_field_is_required_only_when_every_sample_had_it():
    schema = schema_of(shapes_of({"id": 1, "nick": "a"}, {"id": 2}))
    assert schema["required"] == ["id"] and set(schema["properties"]) == {"id", "nick"}


def test_null_seen_makes_a_field_nullable():
    schema = schema_of(shapes_of({"parent": None}, {"parent": 3}))
    assert schema["properties"]["parent"] == {"type": "integer", "minimum": 3, "maximum": 3, "nullable": True}


def test_integers_and_numbers_together_are_a_number_with_the_whole_range():
    assert schema_of(shapes_of(1, 2.5, 7)) == {"type": "number", "minimum": 1, "maximum": 7}


def test_conflicting_types_are_a_one_of():
    assert schema_of(shapes_of("x1", True)) == {"oneOf": [{"type": "boolean"}, {"type": "string"}]}


def test_formats_and_enums():
    assert schema_of(shapes_of("2026-12-07", "2026-01-01"))["format"] == "date"
    assert "format" not in schema_of(shapes_of("2026-12-07", "plain"))
    assert schema_of(shapes_of("fast", "slow", "fast"))["enum"] == ["fast", "slow"]
    assert "enum" not in schema_of(shapes_of("fast", "slow"))  # each seen once: maybe not an enum at all


def test_arrays_describe_their_items():
    schema = schema_of(shapes_of([{"a": 1}, {"a": 2, "b": "x"}]))
    assert schema["type"] == "array" and schema["items"]["required"] == ["a"]


def test_the_document_has_paths_parameters_bodies_and_responses_per_status():
    doc = document(raw("/api/items/1", 201, b"dry_run=true", {"name": "a"}, {"id": 1}),
                   raw("/api/items/2", 201, b"", {"name": "b"}, {"id": 2}),
                   raw("/api/items/3", 400, b"", {"nme": "c"}, {"errors": {"name": ["required"]}}))
    assert doc["openapi"].startswith("3.")
    operation = doc["paths"]["/api/items/{b}"]["post"]
    assert {(p["name"], p["in"], p["required"]) for p in operation["parameters"]} == \
        {("b", "path", True), ("dry_run", "query", False)}
    # Learned from the 2xx samples only: the refused request's misspelt key is not the API's.
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request["properties"] == {"name": {"type": "string"}}
    assert set(operation["responses"]) == {"201", "400"}
    ok = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert ok["properties"]["id"]["type"] == "integer"


def test_a_body_over_the_cap_is_said_to_be_unknown():
    over = raw("/api/items/1", 200, response={"id": 1})
    over.response_body, over.response_over = None, True
    operation = document(over)["paths"]["/api/items/{b}"]["post"]
    assert operation["responses"]["200"]["x-shape-unknown"] == 1
