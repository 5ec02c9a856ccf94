"""metrics.apidocs.drift: each kind of drift between a learned document and a declared one, with where."""
from __future__ import annotations

from metrics.apidocs.drift import drift


def obj(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties, **({"required": list(required)} if required else {})}


def json_body(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


DECLARED = {"openapi": "3.0.3", "paths": {
    "/users/{id}": {
        "get": {"parameters": [{"name": "verbose", "in": "query", "required": True, "schema": {"type": "boolean"}}],
                "responses": {"200": {"description": "", **json_body({"$ref": "#/components/schemas/User"})}}},
    },
}, "components": {"schemas": {"User": obj({"id": {"type": "integer"}, "email": {"type": "string"},
                                           "meta": {"type": "object"}}, ("id", "email"))}}}


def learned(response: dict, status: str = "200", path: str = "/users/{b}", method: str = "get",
            parameters: list | None = None) -> dict:
    operation = {"responses": {status: {"description": "", **json_body(response)}}}
    if parameters is not None:
        operation["parameters"] = parameters
    return {"openapi": "3.0.3", "paths": {path: {method: operation}}}


VERBOSE = [{"name": "verbose", "in": "query", "required": True}]


def kinds(items: list[dict]) -> list[tuple]:
    return [(i["kind"], i["path"], i["method"], i["status"], i["location"], i["field"]) for i in items]


def test_matching_traffic_has_no_drift():
    seen = obj({"id": {"type": "integer"}, "email": {"type": "string"}, "meta": obj({"any": {"type": "string"}})})
    assert drift(learned(seen, parameters=VERBOSE), DECLARED) == []


def test_a_new_field_a_missing_field_and_a_type_change_name_their_place():
    seen = obj({"id": {"type": "string"}, "nickname": obj({"first": {"type": "string"}})})
    assert kinds(drift(learned(seen, parameters=VERBOSE), DECLARED)) == [
        ("type_change", "/users/{id}", "GET", "200", "response 200", "id"),
        ("new_field", "/users/{id}", "GET", "200", "response 200", "nickname"),
        ("missing_field", "/users/{id}", "GET", "200", "response 200", "email"),
    ]


def test_an_undocumented_status_operation_and_path():
    assert kinds(drift(learned(obj({}), status="418", parameters=VERBOSE), DECLARED))[0] == \
        ("undocumented_status", "/users/{id}", "GET", "418", None, None)
    assert kinds(drift(learned(obj({}), method="delete"), DECLARED)) == \
        [("undocumented_operation", "/users/{b}", "DELETE", None, None, None)]
    assert kinds(drift(learned(obj({}), path="/orders/{b}"), DECLARED)) == \
        [("undocumented_path", "/orders/{b}", "GET", None, None, None)]


def test_query_parameters_drift_too():
    found = kinds(drift(learned(obj({"id": {"type": "integer"}, "email": {"type": "string"}}),
                                parameters=[{"name": "page", "in": "query", "required": False}]), DECLARED))
    assert ("new_field", "/users/{id}", "GET", None, "query", "page") in found
    assert ("missing_field", "/users/{id}", "GET", None, "query", "verbose") in found


def test_an_integer_where_a_number_is_declared_is_no_drift():
    declared = {"openapi": "3.0.3", "paths": {"/p": {"get": {"responses": {
        "200": json_body(obj({"price": {"type": "number"}}))}}}}}
    assert drift(learned(obj({"price": {"type": "integer"}}), path="/p"), declared) == []
