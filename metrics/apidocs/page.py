"""A route's learned API docs in the admin: its operations as a readable list (parameters, request fields,
responses per status with their fields), the drift from its declared document, and the OpenAPI JSON."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from metrics.api.apidocs import declared_of, drift_report, route_of
from metrics.apidocs.openapi import document_for

Row = dict[str, Any]


def _note(schema: dict[str, Any]) -> str:
    """What a field's schema says besides its type: format, range, enum, open object."""
    notes = []
    if "format" in schema:
        notes.append(schema["format"])
    if "minimum" in schema:
        notes.append(f"{schema['minimum']} … {schema['maximum']}")
    if "enum" in schema:
        notes.append("one of " + ", ".join(map(str, schema["enum"])))
    if schema.get("additionalProperties"):
        notes.append("more keys than described")
    return "; ".join(notes)


def field_rows(schema: dict[str, Any], prefix: str = "", required: bool = True) -> list[Row]:
    """A learned schema flattened: one row per field (path, type, required, notes), the body itself first."""
    alternatives = schema.get("oneOf") or [schema]
    kinds = [a.get("type", "any") for a in alternatives]
    rows = [{"field": prefix or "(body)", "type": " or ".join(kinds) + (", null" if schema.get("nullable") else ""),
             "required": required, "note": "; ".join(filter(None, (_note(a) for a in alternatives)))}]
    for alternative in alternatives:
        needed = set(alternative.get("required", ()))
        for name, child in alternative.get("properties", {}).items():
            rows += field_rows(child, f"{prefix}.{name}" if prefix else name, name in needed)
        if "items" in alternative:
            rows += field_rows(alternative["items"], f"{prefix}[]", False)
    return rows


def _body_rows(content: dict[str, Any] | None) -> tuple[list[str], list[Row]]:
    if not content:
        return [], []
    rows: list[Row] = []
    for entry in content.values():
        if "schema" in entry:
            rows = field_rows(entry["schema"])
            break
    return sorted(content), rows


def operation_list(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's operations as the page lists them."""
    listed = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            types, rows = _body_rows(operation.get("requestBody", {}).get("content"))
            responses = []
            for status, response in operation["responses"].items():
                media, fields = _body_rows(response.get("content"))
                responses.append({"status": status, "description": response["description"], "types": media,
                                  "fields": fields, "unknown": response.get("x-shape-unknown", 0)})
            listed.append({"method": method.upper(), "path": path, "samples": operation["x-samples"],
                           "parameters": operation.get("parameters", []), "request_types": types,
                           "request_fields": rows, "responses": responses})
    return listed


@require_GET
def route_page(request: HttpRequest, route: str) -> HttpResponse:
    """The page (staff only: mounted through admin.site.admin_view); viewers may read it."""
    found = route_of(route)
    document = document_for(found.name)
    context = {
        **admin.site.each_context(request),
        "title": f"Learned API docs: {found.name}",
        "route": found,
        "sampling": isinstance(found.api_docs, dict) and found.api_docs.get("enabled", True) is True,
        "operations": operation_list(document),
        "drift": drift_report(found) if declared_of(found) is not None else None,
        "document_json": json.dumps(document, indent=2, sort_keys=True),
    }
    return render(request, "admin/metrics/apidocs.html", context)
