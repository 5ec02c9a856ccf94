"""A draft change of a route: checked exactly as the API checks a PATCH of the route (unknown keys, wrong types,
every field rule, through routes.services.prepare_route), limited to the fields its advice may change, and shown
as the diff the audit trail will record when it is applied."""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from routes.api.document_types import refuse_wrong_types, route_type_errors
from routes.models import Route
from routes.secrets import redact
from routes.services import ConfigError, diff, prepare_route, route_document
from routes.validation import unknown_keys


class DraftRefused(Exception):
    """A draft that is not offered (or not applied): `reason` says why, in words an operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Draft:
    """A checked draft: the fields it changes, the route document before and after, and what changes."""

    patch: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def changes(self) -> dict[str, list[Any]]:
        """{field: [old, new]} with secrets redacted: the audit entry's `changes` once applied."""
        return redact(diff(self.before, self.after))

    @property
    def text_diff(self) -> str:
        """A unified diff of the route document (secrets redacted)."""
        old = json.dumps(redact(self.before), indent=2, default=str).splitlines()
        new = json.dumps(redact(self.after), indent=2, default=str).splitlines()
        name = self.before.get("name", "route")
        return "\n".join(difflib.unified_diff(old, new, f"{name} (now)", f"{name} (with this advice)", lineterm=""))

    @property
    def base(self) -> str:
        """A digest of the route document the draft was made against: a changed route makes the draft stale."""
        return digest(self.before)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def check_draft(route: Route, patch: Any, fields: tuple[str, ...]) -> Draft:
    """The draft `patch` of `route` checked; DraftRefused naming the first problem.

    Refused: what is not an object of route fields, a draft naming another route (`name` or `id`), a key the
    route document does not know (at any depth, by its path), a field outside `fields`, and anything the API
    would refuse for a PATCH of this route (wrong types, values out of range, a block's rules).
    """
    if not isinstance(patch, dict):
        raise DraftRefused("not a draft: it must be a JSON object of route fields")
    for key, mine in (("name", route.name), ("id", route.pk)):
        if key in patch and patch[key] != mine:
            raise DraftRefused(f"wrong route: the draft names {key} {patch[key]!r}, this advice is about route "
                               f"{route.name!r}")
    unknown = unknown_keys(patch)
    if unknown:
        raise DraftRefused(f"unknown key: {', '.join(unknown)}")
    outside = sorted(set(patch) - set(fields) - {"name", "id"})
    if outside:
        raise DraftRefused(f"field not allowed: {', '.join(outside)} (this advice may change only "
                           f"{', '.join(fields) or 'nothing'})")
    try:
        doc = refuse_wrong_types(lambda: prepare_route(patch, route=route, partial=True), route_type_errors(patch))
    except ConfigError as exc:
        raise DraftRefused("invalid: " + "; ".join(f"{path or 'route'}: {' '.join(messages)}"
                                                   for path, messages in sorted(exc.errors.items()))) from exc
    before = route_document(route)
    changed = {key: doc[key] for key in patch if key not in ("name", "id")}
    return Draft(patch=changed, before=before, after={**before, **changed})
