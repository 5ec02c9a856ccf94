"""The OpenAPI 3 document of a route, built from the operations its gateways learned (LearnedOperation rows).

Rows of several processes are made consistent first (protocols.apidocs.paths.collapse: a position where many
distinct words appear becomes a parameter) and merged per method, template and status. Schemas follow the shapes:
- a field is required when it was present in every sample of its object; `nullable` when null was seen;
- integer and number seen together are a number (the simpler choice); other conflicting types are a `oneOf`;
- a string has a `format` when every sample had the same one, and an `enum` when it took at most
  shapes.MAX_ENUM word-like values, each seen more than once on average;
- numbers have the `minimum` and `maximum` seen; an object with more keys than described is open
  (`additionalProperties: true`).
The request body is learned from the 2xx samples when there are some (a refused request says little of what
the API takes), else from all; query parameters from every sample.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from metrics.models import LearnedOperation
from protocols.apidocs import shapes
from protocols.apidocs.learn import Operation, merge_operation
from protocols.apidocs.paths import collapse, split

OPENAPI_VERSION = "3.0.3"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass
class Learned:
    """One learned operation and status, as stored."""

    method: str
    path: str
    status: int
    operation: Operation


def rows_of(route: str) -> list[Learned]:
    return [Learned(row.method, row.path, row.status, row.shape)
            for row in LearnedOperation.objects.filter(route=route).order_by("path", "method", "status")]


def merged(rows: Iterable[Learned]) -> dict[tuple[str, str], dict[int, Operation]]:
    """Rows with consistent templates, merged: (template, method) -> status -> operation."""
    rows = list(rows)
    final = collapse(row.path for row in rows)
    out: dict[tuple[str, str], dict[int, Operation]] = {}
    for row in rows:
        statuses = out.setdefault((final[row.path], row.method.lower()), {})
        mine = statuses.get(row.status)
        statuses[row.status] = row.operation if mine is None else merge_operation(mine, row.operation)
    return out


def schema_of(shape: shapes.Shape | None) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.0 dialect) of a shape; {} (anything) for none."""
    if shape is None:
        return {}
    types = shape["types"]
    nullable = "null" in types
    kinds = {name: detail for name, detail in types.items() if name != "null"}
    if "integer" in kinds and "number" in kinds:
        a, b = kinds.pop("integer"), kinds["number"]
        kinds["number"] = {"n": a["n"] + b["n"], "min": min(a["min"], b["min"]), "max": max(a["max"], b["max"])}
    schemas = [_typed(name, detail) for name, detail in sorted(kinds.items())]
    schema: dict[str, Any] = schemas[0] if len(schemas) == 1 else {"oneOf": schemas} if schemas else {}
    if nullable:
        schema["nullable"] = True
    return schema


def _typed(name: str, detail: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": name}
    if name in ("integer", "number"):
        schema["minimum"], schema["maximum"] = detail["min"], detail["max"]
    elif name == "string":
        formats = [fmt for fmt, count in detail["formats"].items() if count]
        if len(formats) == 1 and formats[0]:
            schema["format"] = formats[0]
        enum = detail["enum"]
        if enum and detail["n"] > len(enum):
            schema["enum"] = list(enum)
    elif name == "object":
        properties = detail["properties"]
        schema["properties"] = {key: schema_of(child) for key, child in sorted(properties.items())}
        required = sorted(key for key, child in properties.items() if child["n"] >= detail["n"])
        if required:
            schema["required"] = required
        if detail["open"]:
            schema["additionalProperties"] = True
    elif name == "array":
        schema["items"] = schema_of(detail["items"])
    return schema


def _content(body: dict[str, Any] | None) -> dict[str, Any]:
    """A body record as OpenAPI `content`: the JSON schema under each JSON media type, the others empty."""
    if body is None:
        return {}
    content: dict[str, Any] = {}
    for media in sorted(body["content_types"]):
        entry: dict[str, Any] = {}
        if body["json"] is not None and ("json" in media):
            entry["schema"] = schema_of(body["json"])
        content[media] = entry
    if body["json"] is not None and not content:
        content["application/json"] = {"schema": schema_of(body["json"])}
    return content


def _parameters(template: str, operations: list[Operation]) -> list[dict[str, Any]]:
    path_shapes: dict[str, Any] = {}
    query: shapes.Shape | None = None
    for operation in operations:
        for name, shape in operation["path"].items():
            path_shapes[name] = shapes.merge(path_shapes.get(name), shape)
        query = shapes.merge(query, operation["query"])
    parameters = []
    for segment in split(template):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            parameters.append({"name": name, "in": "path", "required": True,
                               "schema": schema_of(path_shapes.get(name)) or {"type": "string"}})
    detail = query["types"]["object"] if query is not None else None
    if detail is not None:
        for name, shape in sorted(detail["properties"].items()):
            parameters.append({"name": name, "in": "query", "required": shape["n"] >= detail["n"],
                               "schema": schema_of(shape)})
    return parameters


def operation_of(template: str, statuses: dict[int, Operation]) -> dict[str, Any]:
    """One path item operation: parameters, request body, responses per status."""
    operations = [statuses[status] for status in sorted(statuses)]
    samples = sum(operation["samples"] for operation in operations)
    result: dict[str, Any] = {"summary": f"Learned from {samples} sampled request(s)", "x-samples": samples}
    parameters = _parameters(template, operations)
    if parameters:
        result["parameters"] = parameters
    succeeded = [statuses[status] for status in sorted(statuses) if 200 <= status < 300] or operations
    request = None
    for operation in succeeded:
        request = shapes.merge_body(request, operation["request"])
    content = _content(request)
    if content:
        seen = sum(operation["samples"] for operation in succeeded)
        result["requestBody"] = {"required": request is not None and request["n"] >= seen, "content": content}
        if request is not None and request["unknown"]:
            result["requestBody"]["x-shape-unknown"] = request["unknown"]
    responses: dict[str, Any] = {}
    for status in sorted(statuses):
        operation = statuses[status]
        response: dict[str, Any] = {"description": f"Seen {operation['samples']} time(s)"}
        body = operation["response"]
        content = _content(body)
        if content:
            response["content"] = content
        if body is not None and body["unknown"]:
            response["x-shape-unknown"] = body["unknown"]
        responses[str(status)] = response
    result["responses"] = responses
    return result


def learned_document(route: str, rows: Iterable[Learned]) -> dict[str, Any]:
    """The OpenAPI 3 document of a route's learned operations (see the module docstring)."""
    paths: dict[str, dict[str, Any]] = {}
    total = 0
    for (template, method), statuses in sorted(merged(rows).items()):
        if method not in METHODS:
            continue
        operation = operation_of(template, statuses)
        total += operation["x-samples"]
        paths.setdefault(template, {})[method] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": f"{route} (learned from traffic)", "version": "learned",
                 "description": f"Shapes of {total} sampled request(s) through the route {route!r}; values are "
                                "never kept."},
        "paths": paths,
    }


def document_for(route: str) -> dict[str, Any]:
    return learned_document(route, rows_of(route))
