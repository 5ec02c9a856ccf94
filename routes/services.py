"""Every configuration write: validated, atomic, audited, and announced to the gateways by a version bump.

The admin, the API and the management commands all call these functions; none of them saves a model directly.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeAlias

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from routes.field_checks import split_backend_host
from routes.models import AuditEntry, Backend, BackendHealth, ConfigState, GatewaySettings, Route
from routes.schema import BLOCK_NAMES, FIELDS, STORED_NAMES
from routes.secrets import missing_secret_errors, redact, restore_secrets
from routes.settings_blocks import (
    BlockChange,
    SettingsReport,
    block_changes,
    check_settings,
    settings_unknown_keys,
    unknown_blocks,
)
from routes.validation import Errors, normalize_route, validate_route

Actor: TypeAlias = AbstractBaseUser | AnonymousUser | None


class ConfigError(Exception):
    """A change that would make the configuration invalid; `errors` maps field paths to messages."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


# --- Reading ---------------------------------------------------------------------------------------------

def route_document(route: Route) -> dict[str, Any]:
    """The route as the API and export show it: every field routes.schema declares, in its order (the earlier
    gateway's router shape plus Rusta's fields)."""
    doc: dict[str, Any] = {}
    for declared in FIELDS:
        if declared.kind == "id":
            doc[declared.name] = route.pk
        elif declared.kind == "backends":
            doc[declared.name] = [_backend_document(b) for b in route.backends.all()]
        elif declared.kind == "methods":
            doc[declared.name] = list(route.methods)
        else:
            doc[declared.name] = getattr(route, declared.name)
    return doc


def _backend_document(backend: Backend) -> dict[str, Any]:
    return {
        "id": backend.pk,  # read-only: names the backend in /api/backends/{id}/health/; ignored when sent back
        # IPv6 literals are stored bare and shown bracketed, as in a URL.
        "host": f"{backend.scheme}://[{backend.host}]" if ":" in backend.host else f"{backend.scheme}://{backend.host}",
        "port": backend.port,
        "weight": backend.weight,
        "health_check_path": backend.health_check_path,
        "enabled": backend.enabled,
        "description": backend.description,
        # Shown only when set, as sent: the documents of backends reached by their host alone stay as they were.
        **({"discovery": backend.discovery} if backend.discovery is not None else {}),
        **({"tls": backend.tls} if backend.tls is not None else {}),
    }


def all_route_documents() -> list[dict[str, Any]]:
    return [route_document(r) for r in Route.objects.prefetch_related("backends").order_by("id")]


# Reads never create the single rows: a GET must not write (and may run against a read-only replica).
def gateway_settings() -> GatewaySettings:
    """The gateway-wide blocks; an unsaved empty row before the first import."""
    return GatewaySettings.objects.filter(pk=1).first() or GatewaySettings(pk=1)


def config_version() -> ConfigState:
    """The configuration version; an unsaved version 0 before the first change."""
    return ConfigState.objects.filter(pk=1).first() or ConfigState(pk=1, version=0)


# --- Writing ---------------------------------------------------------------------------------------------

def actor_name(actor: Actor) -> str:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return "system"
    return actor.get_username()


def record_audit(actor: Actor, source: str, action: str, object_type: str, obj_id: Any, obj_repr: str,
                 changes: dict[str, Any]) -> None:
    """One audit row; call it inside the transaction of the change it describes."""
    AuditEntry.objects.create(
        actor=actor if isinstance(actor, get_user_model()) else None,
        actor_name=actor_name(actor),
        source=source,
        action=action,
        object_type=object_type,
        object_id="" if obj_id is None else str(obj_id),
        object_repr=obj_repr[:200],
        changes=redact(changes),
    )


def bump_version() -> None:
    ConfigState.objects.get_or_create(pk=1)
    ConfigState.objects.filter(pk=1).update(version=F("version") + 1, changed_at=timezone.now())


def bump_health_version() -> None:
    """Tell every gateway process to reload its backend health overlay (the route table stays)."""
    ConfigState.objects.get_or_create(pk=1)
    ConfigState.objects.filter(pk=1).update(health_version=F("health_version") + 1)


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    keys = set(before or {}) | set(after or {})
    keys.discard("id")
    changes = {}
    for key in sorted(keys):
        old = (before or {}).get(key)
        new = (after or {}).get(key)
        if old != new:
            changes[key] = [old, new]
    return changes


def enabled_documents(exclude_ids: Iterable[int] = ()) -> list[dict[str, Any]]:
    excluded = set(exclude_ids)
    return [
        {"id": r.pk, "name": r.name, "enabled": True, "protocol": r.protocol, "external_path": r.external_path,
         "match_host": r.match_host, "methods": r.methods}
        for r in Route.objects.filter(enabled=True).only("id", "name", "protocol", "external_path", "match_host",
                                                         "methods")
        if r.pk not in excluded
    ]


def unique_name(doc: dict[str, Any], taken: set[str]) -> str:
    """A readable name for a route that came without one (the earlier gateway had none)."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", str(doc.get("external_path") or "route")).strip("-").lower() or "root"
    protocol = doc.get("protocol") or "http"
    if protocol != "http":
        base = f"{protocol}-{base}"
    base = base[:90]
    name, counter = base, 2
    while name in taken:
        name = f"{base}-{counter}"
        counter += 1
    return name


def restore_route_secrets(doc: dict[str, Any], stored: Route | None, prefix: str = "") -> Errors:
    missing: list[str] = []
    for block in BLOCK_NAMES:
        doc[block] = restore_secrets(doc.get(block), getattr(stored, block) if stored else None, block, missing)
    return missing_secret_errors(missing, prefix)


def prepare_route(data: Any, *, route: Route | None = None, partial: bool = False,
                  others: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Normalize and validate without saving; raises ConfigError. Used by `save_route` and the dry run.

    `route` is the stored route being changed (its secrets fill `<redacted>` markers), None for a new one.
    """
    if not isinstance(data, dict):
        raise ConfigError({"": ["A route must be a JSON object like {\"external_path\": \"/x\", ...}."]})
    if partial and route is not None:
        merged = route_document(route)
        merged.update(data)
        data = merged
    doc = normalize_route(data)
    if route is not None:
        doc["id"] = route.pk
    else:
        # An `id` copied from another route's document must not make the clash check skip that route.
        doc.pop("id", None)
    if not doc.get("name"):
        taken = set(Route.objects.values_list("name", flat=True))
        doc["name"] = unique_name(doc, taken)
    secret_errors = restore_route_secrets(doc, route)
    if others is None:
        others = enabled_documents()
    errors = validate_route(doc, others)
    for key, messages in secret_errors.items():
        errors.setdefault(key, []).extend(messages)
    name_clash = Route.objects.filter(name=doc.get("name"))
    if route is not None:
        name_clash = name_clash.exclude(pk=route.pk)
    if isinstance(doc.get("name"), str) and name_clash.exists():
        errors.setdefault("name", []).append(f"A route named '{doc['name']}' already exists.")
    if errors:
        raise ConfigError(errors)
    return doc


BACKEND_ATTRS = ("scheme", "host", "port", "weight", "health_check_path", "enabled", "description", "discovery",
                 "tls", "position")


def write_route(route: Route, doc: dict[str, Any]) -> None:
    for attr in STORED_NAMES:
        setattr(route, attr, doc[attr])
    route.save()
    _write_backends(route, doc)


def _write_backends(route: Route, doc: dict[str, Any]) -> None:
    """Make the route's backend rows equal the document's list, in place.

    A stored backend with the same scheme, host and port is updated rather than replaced, so it keeps its id,
    and with it its health history and the data plane's breaker and balancer state, across route edits. Only
    backends that appeared are created and only those that went away are deleted.
    """
    stored: dict[tuple[str, str, int], list[Backend]] = {}
    for backend in Backend.objects.filter(route=route).order_by("position", "id"):
        stored.setdefault((backend.scheme, backend.host.lower(), backend.port), []).append(backend)
    for index, entry in enumerate(doc["backends"]):
        scheme, host = split_backend_host(entry["host"].strip(), doc["protocol"])
        values = {"scheme": scheme, "host": host.strip("[]"), "port": entry["port"], "weight": entry["weight"],
                  "health_check_path": entry["health_check_path"], "enabled": entry["enabled"],
                  "description": entry["description"], "discovery": entry.get("discovery"), "tls": entry.get("tls"),
                  "position": index}
        same = stored.get((scheme, values["host"].lower(), entry["port"]))
        backend = same.pop(0) if same else Backend(route=route)
        if backend.pk is None or any(getattr(backend, attr) != values[attr] for attr in BACKEND_ATTRS):
            adding = backend.pk is None
            for attr, value in values.items():
                setattr(backend, attr, value)
            backend.save()
            if adding:
                # Its health row from the start (unknown, no override: healthy), so that the admin's health list
                # names it without writing on a GET.
                BackendHealth.objects.create(backend=backend)
    gone = [backend.pk for rows in stored.values() for backend in rows]
    if gone:
        Backend.objects.filter(pk__in=gone).delete()
    # A route read with prefetch_related("backends") would otherwise keep showing the rows it had before.
    getattr(route, "_prefetched_objects_cache", {}).pop("backends", None)


def save_route(data: dict[str, Any], *, actor: Actor, source: str, route: Route | None = None,
               partial: bool = False) -> Route:
    """Create (route=None) or update a route from a document; raises ConfigError and saves nothing if invalid."""
    with transaction.atomic():
        if route is not None:
            route = Route.objects.select_for_update().get(pk=route.pk)
        before = route_document(route) if route is not None else None
        doc = prepare_route(data, route=route, partial=partial)
        target = route or Route()
        write_route(target, doc)
        after = route_document(target)
        record_audit(actor, source, AuditEntry.Action.UPDATE if route else AuditEntry.Action.CREATE,
                     "route", target.pk, target.name, diff(before, after))
        bump_version()
    return target


def delete_route(route: Route, *, actor: Actor, source: str) -> None:
    with transaction.atomic():
        before = route_document(route)
        pk, name = route.pk, route.name
        route.delete()
        record_audit(actor, source, AuditEntry.Action.DELETE, "route", pk, name, diff(before, None))
        bump_version()


def set_enabled(routes: Iterable[Route], enabled: bool, *, actor: Actor, source: str) -> int:
    """Enable or disable routes; enabling one that would clash with an enabled route raises ConfigError."""
    changed = 0
    with transaction.atomic():
        for route in routes:
            if route.enabled == enabled:
                continue
            save_route({"enabled": enabled}, actor=actor, source=source, route=route, partial=True)
            changed += 1
    return changed


def request_reload(*, actor: Actor, source: str) -> int:
    """Ask every gateway process to rebuild its table now; returns the new version."""
    with transaction.atomic():
        bump_version()
        state = config_version()
        record_audit(actor, source, AuditEntry.Action.RELOAD, "config", state.version, "configuration", {})
    return state.version


def prepare_settings(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """The blocks `save_settings` would store (secrets restored), without saving; raises ConfigError.

    Every rule of the import applies, and a key no block knows is an error as with `importconfig --strict`.
    """
    return _check_settings(data, gateway_settings(), partial=partial)


def _check_settings(data: Any, row: GatewaySettings, *, partial: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError({"": ["The settings must be a JSON object of blocks, like {\"rate_limit\": {...}}."]})
    errors = unknown_blocks(data)
    new_blocks = check_settings({k: v for k, v in data.items() if k not in errors}, row, errors,
                                clear_absent=not partial)
    # Refused as `importconfig --strict` would (the access and guard blocks' own checks already did).
    for path, message in settings_unknown_keys(data).items():
        errors.setdefault(path, [message])
    if errors:
        raise ConfigError(errors)
    return new_blocks


def save_settings(data: Any, *, actor: Actor, source: str, partial: bool = False,
                  dry_run: bool = False) -> SettingsReport:
    """Change the gateway-wide settings blocks; raises ConfigError and changes nothing if any is invalid.

    Without `partial` (PUT, the admin) `data` is every block and a block it lacks is cleared; with it (PATCH)
    only the blocks it names change, null clearing one. `<redacted>` keeps the stored secret. Each changed block
    gets its audit row and the version is bumped only when something changed; `dry_run` only reports.
    """
    with transaction.atomic():
        row = GatewaySettings.objects.select_for_update().filter(pk=1).first() or GatewaySettings(pk=1)
        changes = block_changes(row, _check_settings(data, row, partial=partial))
        report = SettingsReport.of(row, changes, dry_run=dry_run)
        if changes and not dry_run:
            write_settings(row, changes, actor=actor, source=source, action=AuditEntry.Action.UPDATE)
            bump_version()
    return report


def write_settings(row: GatewaySettings, changes: list[BlockChange], *, actor: Actor, source: str,
                    action: str) -> None:
    """Store the changed blocks, one audit row each (`{block: [old, new]}`, secrets redacted)."""
    for change in changes:
        record_audit(actor, source, action, "settings", 1, change.block, {change.block: [change.old, change.new]})
        setattr(row, change.block, change.new)
    if changes:
        row.save()
