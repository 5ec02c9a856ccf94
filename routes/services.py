"""Every configuration write: validated, atomic, audited, and announced to the gateways by a version bump.

The admin, the API and the management commands all call these functions; none of them saves a model directly.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from routes.models import AuditEntry, Backend, ConfigState, GatewaySettings, Route
from routes.schema import FIELDS, STORED_NAMES
from routes.secrets import missing_secret_errors, redact, restore_secrets
from routes.settings_blocks import (
    SETTINGS_BLOCKS,
    BlockChange,
    SettingsReport,
    block_changes,
    check_settings,
    settings_unknown_keys,
    unknown_blocks,
)
from routes.validation import (
    POLICY_FIELDS,
    Errors,
    normalize_route,
    split_backend_host,
    unknown_keys,
    validate_route,
    without_unknown_keys,
)

TOP_LEVEL_KEYS = frozenset({"version", "routers", *SETTINGS_BLOCKS})

Actor: TypeAlias = AbstractBaseUser | AnonymousUser | None


class ConfigError(Exception):
    """A change that would make the configuration invalid; `errors` maps field paths to messages."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class ImportReport:
    """Every change an import made (or, in a dry run, would make), and the keys it did not understand (by path).

    Routes are listed by name and settings blocks by name only: a block's values may hold secrets.
    """

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    settings_added: list[str] = field(default_factory=list)
    settings_changed: list[str] = field(default_factory=list)
    settings_removed: list[str] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.settings_added or self.settings_changed
                    or self.settings_removed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DryRunDone(Exception):
    """Raised inside a dry run's transaction once its report is complete, so every write is rolled back."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("dry run")
        self.report = report


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


def export_config(*, include_secrets: bool = False) -> dict[str, Any]:
    """The whole configuration in the earlier gateway's file format, loadable by `import_config`."""
    row = gateway_settings()
    data: dict[str, Any] = {"version": 1}
    for block in SETTINGS_BLOCKS:
        value = getattr(row, block)
        if value is not None:
            data[block] = value if include_secrets else redact(value)
    routers = []
    for doc in all_route_documents():
        # Ids differ between installations, and the earlier gateway's file format has none.
        doc.pop("id")
        for backend in doc["backends"]:
            backend.pop("id")
        routers.append(doc if include_secrets else redact(doc))
    data["routers"] = routers
    return data


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


def _bump_version() -> None:
    ConfigState.objects.get_or_create(pk=1)
    ConfigState.objects.filter(pk=1).update(version=F("version") + 1, changed_at=timezone.now())


def bump_health_version() -> None:
    """Tell every gateway process to reload its backend health overlay (the route table stays)."""
    ConfigState.objects.get_or_create(pk=1)
    ConfigState.objects.filter(pk=1).update(health_version=F("health_version") + 1)


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    keys = set(before or {}) | set(after or {})
    keys.discard("id")
    changes = {}
    for key in sorted(keys):
        old = (before or {}).get(key)
        new = (after or {}).get(key)
        if old != new:
            changes[key] = [old, new]
    return changes


def _enabled_documents(exclude_ids: Iterable[int] = ()) -> list[dict[str, Any]]:
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


def _restore_route_secrets(doc: dict[str, Any], stored: Route | None, prefix: str = "") -> Errors:
    missing: list[str] = []
    for block in POLICY_FIELDS:
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
    secret_errors = _restore_route_secrets(doc, route)
    if others is None:
        others = _enabled_documents()
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


BACKEND_ATTRS = ("scheme", "host", "port", "weight", "health_check_path", "enabled", "position")


def _write_route(route: Route, doc: dict[str, Any]) -> None:
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
                  "health_check_path": entry["health_check_path"], "enabled": entry["enabled"], "position": index}
        same = stored.get((scheme, values["host"].lower(), entry["port"]))
        backend = same.pop(0) if same else Backend(route=route)
        if backend.pk is None or any(getattr(backend, attr) != values[attr] for attr in BACKEND_ATTRS):
            for attr, value in values.items():
                setattr(backend, attr, value)
            backend.save()
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
        _write_route(target, doc)
        after = route_document(target)
        record_audit(actor, source, AuditEntry.Action.UPDATE if route else AuditEntry.Action.CREATE,
                     "route", target.pk, target.name, _diff(before, after))
        _bump_version()
    return target


def delete_route(route: Route, *, actor: Actor, source: str) -> None:
    with transaction.atomic():
        before = route_document(route)
        pk, name = route.pk, route.name
        route.delete()
        record_audit(actor, source, AuditEntry.Action.DELETE, "route", pk, name, _diff(before, None))
        _bump_version()


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
        _bump_version()
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
            _write_settings(row, changes, actor=actor, source=source, action=AuditEntry.Action.UPDATE)
            _bump_version()
    return report


def _write_settings(row: GatewaySettings, changes: list[BlockChange], *, actor: Actor, source: str,
                    action: str) -> None:
    """Store the changed blocks, one audit row each (`{block: [old, new]}`, secrets redacted)."""
    for change in changes:
        record_audit(actor, source, action, "settings", 1, change.block, {change.block: [change.old, change.new]})
        setattr(row, change.block, change.new)
    if changes:
        row.save()


def import_config(data: Any, *, actor: Actor, source: str, replace: bool = False, strict: bool = False,
                  dry_run: bool = False) -> ImportReport:
    """Load a configuration file of the earlier gateway (or Rusta's export) in one transaction.

    Routes are matched by name (generated from the path when absent); with `replace`, routes and settings
    blocks not in the file are deleted. Any invalid route raises ConfigError naming each error by path, and
    nothing changes. Keys Rusta does not know are listed in the report (those of the resilience blocks are
    dropped, as no write may store them); with `strict` each one is an error instead. With `dry_run` the
    import runs in full, so its report is exactly what a real run would say, and is then rolled back
    (audit rows and the version bump included).
    """
    try:
        with transaction.atomic():
            report = _import_config(data, actor=actor, source=source, replace=replace, strict=strict)
            if dry_run:
                raise _DryRunDone(report)
    except _DryRunDone as done:
        done.report.dry_run = True
        return done.report
    return report


def _import_config(data: Any, *, actor: Actor, source: str, replace: bool, strict: bool) -> ImportReport:
    """The import itself, writes and audit rows included; `import_config` decides whether they are kept."""
    if not isinstance(data, dict):
        raise ConfigError({"": ["The configuration must be a JSON object with a 'routers' list."]})
    routers = data.get("routers", [])
    if not isinstance(routers, list):
        raise ConfigError({"routers": ["Must be a list of router objects."]})
    report = ImportReport()
    report.unknown_keys = [key for key in data if key not in TOP_LEVEL_KEYS and not str(key).startswith("_")]
    settings_unknown = settings_unknown_keys(data)
    report.unknown_keys += list(settings_unknown)
    errors: Errors = {}
    with transaction.atomic():
        existing = {r.name: r for r in Route.objects.select_for_update().prefetch_related("backends")}
        taken_in_file: set[str] = set()
        planned: list[tuple[Route | None, dict[str, Any]]] = []
        for index, raw in enumerate(routers):
            prefix = f"routers[{index}]"
            if not isinstance(raw, dict):
                errors[prefix] = ["Must be an object."]
                continue
            report.unknown_keys += unknown_keys(raw, prefix)
            doc = normalize_route(raw) if strict else without_unknown_keys(normalize_route(raw))
            doc.pop("id", None)  # routes are matched by name; ids differ between installations
            if not doc.get("name"):
                doc["name"] = unique_name(doc, taken_in_file)
            name = doc["name"] if isinstance(doc["name"], str) else None
            if name is not None and name in taken_in_file:
                errors.setdefault(f"{prefix}.name", []).append(f"The name '{name}' is used twice in the file.")
            if name is not None:
                taken_in_file.add(name)
            route = existing.get(name) if name is not None else None
            for key, messages in _restore_route_secrets(doc, route, f"{prefix}.").items():
                errors.setdefault(key, []).extend(messages)
            planned.append((route, doc))
        kept_ids = {r.pk for name, r in existing.items() if name in taken_in_file}
        gone_ids = {r.pk for name, r in existing.items() if name not in taken_in_file} if replace else set()
        others = _enabled_documents(exclude_ids=kept_ids | gone_ids)
        for index, (route, doc) in enumerate(planned):
            if route is not None:
                doc["id"] = route.pk
            route_errors = validate_route(doc, others)
            for key, messages in route_errors.items():
                errors.setdefault(f"routers[{index}].{key}", []).extend(messages)
            # Only valid routes take part in later clash checks; an invalid one is already reported.
            if doc.get("enabled") and not route_errors:
                others.append(doc)
        row = gateway_settings()
        # With `replace` the database equals the file: a block it lacks is cleared.
        new_blocks = check_settings(data, row, errors, clear_absent=replace)
        if strict:
            # Paths that validation already refused (`retry.treshold`) keep their own message; a settings block's
            # key gets the same wording as through the API (`ai.temp`: what `ai` knows, the closest name).
            for path in report.unknown_keys:
                errors.setdefault(path, [settings_unknown.get(path, "Unknown key; Rusta does not use it.")])
        if errors:
            raise ConfigError(errors)
        for route, doc in planned:
            before = route_document(route) if route is not None else None
            target = route or Route()
            _write_route(target, doc)
            after = route_document(target)
            if before is None:
                report.created.append(target.name)
            elif _diff(before, after):
                report.updated.append(target.name)
            else:
                report.unchanged.append(target.name)
                continue
            record_audit(actor, source, AuditEntry.Action.IMPORT, "route", target.pk, target.name, _diff(before, after))
        for name, route in existing.items():
            if route.pk in gone_ids:
                before = route_document(route)
                route.delete()
                report.deleted.append(name)
                record_audit(actor, source, AuditEntry.Action.DELETE, "route", before["id"], name, _diff(before, None))
        changes = block_changes(row, new_blocks)
        _write_settings(row, changes, actor=actor, source=source, action=AuditEntry.Action.IMPORT)
        for change in changes:
            getattr(report, f"settings_{change.kind}").append(change.block)
        # A file that changes nothing must not make every gateway process rebuild its table.
        if report.changed:
            _bump_version()
    return report
