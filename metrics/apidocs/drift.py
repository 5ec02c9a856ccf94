"""The drift of a route's learned document from the one declared in its `api_docs.openapi`: what traffic shows
that the declaration does not say, and what the declaration promises that traffic never showed.

Kinds, each with where (path as declared or learned, method, status, location, field path):
- `undocumented_path`: a learned path no declared path matches (parameters match by position);
- `undocumented_operation`: a declared path, a method it does not declare;
- `undocumented_status`: a status the operation's responses do not declare (nor a `2XX` range, nor `default`);
- `new_field`: a field (or query parameter) seen but not declared, outside any free-form object;
- `missing_field`: a field (or query parameter) declared required, never seen where its parent was;
- `type_change`: a field seen with a JSON type the declaration does not allow (an integer where a number is
  declared is allowed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from metrics.apidocs.documents import body_fields, operations, query_parameters
from metrics.apidocs.fields import Field, ancestors, under_free

KINDS = ("undocumented_path", "undocumented_operation", "undocumented_status", "new_field", "missing_field",
         "type_change")
QUERY = "query"


@dataclass
class DriftItem:
    kind: str
    path: str
    method: str
    status: str | None = None
    location: str | None = None
    field: str | None = None
    detail: str = ""


def _allowed(types: set[str]) -> set[str]:
    return types | {"integer"} if "number" in types else types


def _declared_status(responses: Any, status: str) -> bool:
    if not isinstance(responses, dict):
        return False
    return status in responses or f"{status[0]}XX" in responses or f"{status[0]}xx" in responses \
        or "default" in responses


def _fields(items: list[DriftItem], where: DriftItem, seen: dict[str, Field], declared: dict[str, Field]) -> None:
    for name, field in seen.items():
        if not name:
            continue
        mine = declared.get(name)
        if mine is None:
            # Reported once, at the outermost new field (its parent is declared), not again for what it holds.
            if ancestors(name)[-1] in declared and not under_free(name, declared):
                items.append(DriftItem("new_field", where.path, where.method, where.status, where.location, name,
                                       f"seen as {'/'.join(sorted(field.types))}, not declared"))
            continue
        seen_types, allowed = field.types - {"null"}, _allowed(mine.types - {"null"})
        if seen_types and allowed and not seen_types <= allowed:
            items.append(DriftItem("type_change", where.path, where.method, where.status, where.location, name,
                                   f"declared {'/'.join(sorted(mine.types))}, seen "
                                   f"{'/'.join(sorted(field.types))}"))
    for name, field in declared.items():
        if name and field.required and name not in seen and ancestors(name)[-1] in seen \
                and not under_free(name, seen):
            items.append(DriftItem("missing_field", where.path, where.method, where.status, where.location, name,
                                   "declared required, never seen"))


def drift(learned: dict[str, Any], declared: dict[str, Any]) -> list[dict[str, Any]]:
    """The drift items of a learned document against a declared one (see the module docstring)."""
    declared_ops = {(key, method): (path, operation, item)
                    for key, method, path, operation, item in operations(declared)}
    declared_paths = {key for key, _ in declared_ops}
    items: list[DriftItem] = []
    reported: set[str] = set()
    for key, method, path, operation, item in operations(learned):
        method_name = method.upper()
        if key not in declared_paths:
            if key not in reported:
                reported.add(key)
                methods = sorted(m.upper() for k, m, *_ in operations(learned) if k == key)
                items.append(DriftItem("undocumented_path", path, ", ".join(methods),
                                       detail="no declared path matches"))
            continue
        if (key, method) not in declared_ops:
            items.append(DriftItem("undocumented_operation", path, method_name,
                                   detail="the declared path has no such method"))
            continue
        declared_path, declared_op, declared_item = declared_ops[(key, method)]
        where = DriftItem("", declared_path, method_name, location=QUERY)
        seen_query = query_parameters(operation, item, learned)
        wanted_query = query_parameters(declared_op, declared_item, declared)
        for name in sorted(set(seen_query) - set(wanted_query)):
            items.append(DriftItem("new_field", declared_path, method_name, None, QUERY, name,
                                   "query parameter seen, not declared"))
        for name in sorted(n for n, required in wanted_query.items() if required and n not in seen_query):
            items.append(DriftItem("missing_field", declared_path, method_name, None, QUERY, name,
                                   "query parameter declared required, never seen"))
        responses = declared_op.get("responses")
        for status in operation.get("responses", {}):
            if not _declared_status(responses, str(status)):
                items.append(DriftItem("undocumented_status", declared_path, method_name, str(status),
                                       detail="the declared responses have no such status"))
        seen_bodies = body_fields(operation, learned)
        wanted_bodies = body_fields(declared_op, declared)
        for location, fields in seen_bodies.items():
            wanted = wanted_bodies.get(location)
            if wanted is None and location.startswith("response "):
                status = location.split(" ", 1)[1]
                wanted = wanted_bodies.get(f"response {status[0]}XX") or wanted_bodies.get("response default")
            if wanted is None:
                continue
            where.location = location
            where.status = location.split(" ", 1)[1] if location.startswith("response ") else None
            _fields(items, where, fields, wanted)
    return [asdict(item) for item in items]
