"""The one bridge from ORM rows to the data plane: the immutable RouteTable and the backend health overlay."""
from __future__ import annotations

import logging
from typing import Any, NamedTuple

from django.db import models
from django.db.models import Prefetch
from django.utils import timezone

from protocols.auth.consumers import DIRECTORY_SETTING
from protocols.block_errors import BlockError
from protocols.discovery import discovery_spec
from protocols.patterns import PatternError
from protocols.table import BackendSpec, RouteSpec, RouteTable
from protocols.tls import CertificateSpec
from routes.consumers.directory import consumer_directory
from routes.models import (
    Backend,
    BackendHealth,
    Certificate,
    ConfigState,
    GatewaySettings,
    HealthState,
    Override,
    Route,
)
from routes.schema import BLOCK_NAMES, FIELDS

log = logging.getLogger(__name__)


def current_version() -> int:
    """The configuration version, in one indexed query; 0 before the first change."""
    version = ConfigState.objects.filter(pk=1).values_list("version", flat=True).first()
    return version or 0


class Versions(NamedTuple):
    """What a gateway process polls: the configuration version, the health version, the latest cache purge, and
    when the background work last ran (Unix seconds, 0: never)."""

    config: int
    health: int
    cache_purge: int
    background_at: float = 0.0


def current_versions() -> Versions:
    """The versions a table watcher polls, in one query; all 0 before the first change."""
    row = ConfigState.objects.filter(pk=1).values_list(
        "version", "health_version", "cache_purge_id", "background_ran_at").first()
    if row is None:
        return Versions(0, 0, 0)
    return Versions(row[0], row[1], row[2] or 0, row[3].timestamp() if row[3] else 0.0)


def health_map() -> dict[int, bool]:
    """Backend id -> effective health (overrides applied), in one query. Backends never checked are absent."""
    rows = BackendHealth.objects.exclude(state=HealthState.UNKNOWN, override=Override.NONE)
    return {
        backend_id: BackendHealth.effective_of(state, override)
        for backend_id, state, override in rows.values_list("backend_id", "state", "override")
    }


def route_spec(route: Route) -> RouteSpec:
    """A route row (with its enabled backends prefetched) as plain data: each field routes.schema passes to the
    data plane under its RouteSpec name, every block in `policies`."""
    fields = {field.spec: field.to_spec(getattr(route, field.name)) for field in FIELDS if field.spec is not None}
    return RouteSpec(
        id=route.pk,
        backends=_backend_specs(route),
        order=route.pk,
        policies={block: getattr(route, block) for block in BLOCK_NAMES},
        **fields,
    )


def _backend_specs(route: Route) -> tuple[BackendSpec, ...]:
    """The route's (prefetched) backends as plain data. One whose `discovery` does not compile (validation
    prevents it) is left out and logged, rather than connected to by a name meant for discovery."""
    specs = []
    for b in route.backends.all():
        try:
            discovery = discovery_spec(b.discovery)
        except BlockError as exc:
            log.error("backend %s of route %s (%s) left out of the table: its discovery does not compile: %s",
                      b.pk, route.pk, route.name, exc)
            continue
        tls = b.tls or {}
        specs.append(BackendSpec(id=b.pk, scheme=b.scheme, host=b.host, port=b.port, weight=b.weight,
                                 health_check_path=b.health_check_path, description=b.description,
                                 discovery=discovery, tls_ca=tls.get("ca", ""),
                                 tls_server_name=tls.get("server_name", ""), tls_verify=tls.get("verify", True)))
    return tuple(specs)


def gateway_blocks() -> dict[str, Any]:
    """The gateway-wide policy blocks (every JSON field of GatewaySettings: jwt, rate_limit...) that are set,
    in one query; the data plane applies them to routes without a block of their own."""
    row = GatewaySettings.objects.filter(pk=1).first()
    if row is None:
        return {}
    blocks = {f.name: getattr(row, f.name) for f in GatewaySettings._meta.concrete_fields
              if isinstance(f, models.JSONField)}
    return {name: value for name, value in blocks.items() if value is not None}


def certificate_specs() -> tuple[CertificateSpec, ...]:
    """Every stored TLS certificate with its key, as plain data for the proxy listener, in one query."""
    return tuple(
        CertificateSpec(id=row.pk, name=row.name, hosts=tuple(row.hosts), chain_pem=row.certificate,
                        key_pem=row.key, default=row.default,
                        not_after=row.not_after.timestamp() if row.not_after else 0.0,
                        fingerprint=row.fingerprint_sha256)
        for row in Certificate.objects.order_by("id")
    )


def build_table(version: int | None = None) -> RouteTable:
    """Compile every enabled route, with the gateway-wide blocks and the consumer directory (in `settings`) and
    the TLS certificates. A row that cannot compile is left out and logged, never fatal."""
    if version is None:
        version = current_version()
    enabled_backends = Prefetch("backends", queryset=Backend.objects.filter(enabled=True).order_by("position", "id"))
    specs = []
    for route in Route.objects.filter(enabled=True).prefetch_related(enabled_backends).order_by("id"):
        spec = route_spec(route)
        try:
            RouteTable([spec])
        except PatternError as exc:
            log.error("route %s (%s) left out of the table: %s", route.pk, route.name, exc)
            continue
        specs.append(spec)
    settings = {**gateway_blocks(), DIRECTORY_SETTING: consumer_directory(timezone.now())}
    return RouteTable(specs, version=version, settings=settings, certificates=certificate_specs())
