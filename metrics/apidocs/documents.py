"""Reading OpenAPI 3 documents the same way on both sides (learned and declared, or learned and a reference):
paths as templates whose parameters match by position, operations, and the JSON body fields of each operation's
request and responses."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from metrics.apidocs.fields import Field, walk

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_PARAM = re.compile(r"\{[^/}]*\}")
REQUEST = "request"


def path_key(path: str) -> str:
    """A path template as compared: parameters unnamed (`/users/{}`), no trailing slash."""
    key = _PARAM.sub("{}", path)
    return key.rstrip("/") or "/"


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """(path key, method, path as written, operation, path item) for every operation of a document."""
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method, operation in item.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                yield path_key(path), method, path, operation, item


def json_schema(content: Any) -> Any:
    """The schema of the first JSON media type of a `content` map, None when it has none."""
    if not isinstance(content, dict):
        return None
    for media, entry in content.items():
        if "json" in str(media) and isinstance(entry, dict) and "schema" in entry:
            return entry["schema"]
    return None


def resolve_object(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    """A request body, response or parameter with its `$ref` followed (components/requestBodies etc.)."""
    seen = 0
    while isinstance(value, dict) and isinstance(value.get("$ref"), str) and seen < 10:
        target: Any = document
        for part in value["$ref"].removeprefix("#/").split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        value = target
        seen += 1
    return value if isinstance(value, dict) else {}


def body_fields(operation: dict[str, Any], document: dict[str, Any]) -> dict[str, dict[str, Field]]:
    """The JSON fields of an operation by location: `request`, and `response <status>` per status."""
    found: dict[str, dict[str, Field]] = {}
    request = resolve_object(operation.get("requestBody"), document)
    schema = json_schema(request.get("content"))
    if schema is not None:
        found[REQUEST] = {path: f for path, f in walk(schema, document).items() if not f.read_only}
    responses = operation.get("responses")
    for status, response in (responses.items() if isinstance(responses, dict) else ()):
        schema = json_schema(resolve_object(response, document).get("content"))
        if schema is not None:
            found[f"response {status}"] = {path: f for path, f in walk(schema, document).items()
                                           if not f.write_only}
    return found


def query_parameters(operation: dict[str, Any], item: dict[str, Any], document: dict[str, Any]) -> dict[str, bool]:
    """The query parameters of an operation (its own and its path item's): name -> required."""
    found: dict[str, bool] = {}
    for parameter in [*(item.get("parameters") or []), *(operation.get("parameters") or [])]:
        parameter = resolve_object(parameter, document)
        if parameter.get("in") == "query" and isinstance(parameter.get("name"), str):
            found[parameter["name"]] = parameter.get("required") is True
    return found
