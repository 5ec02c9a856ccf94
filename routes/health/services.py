"""The operator's override of a backend's health, audited and published to the gateways."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from routes.health.models import BackendHealth, HealthEvent, Override
from routes.models import AuditEntry, Backend
from routes.services import Actor, ConfigError, actor_name, bump_health_version, record_audit

OVERRIDE_WORDS = {"up": Override.UP, "down": Override.DOWN, None: Override.NONE, "none": Override.NONE}


def parse_override(value: object) -> str:
    """`"up"`, `"down"` or null (clear) as an Override value; ConfigError for anything else."""
    if isinstance(value, str) or value is None:
        found = OVERRIDE_WORDS.get(value.lower() if isinstance(value, str) else None)
        if found is not None:
            return found
    raise ConfigError({"override": ['Use "up", "down" or null (clear the override).']})


def set_health_override(backend: Backend, override: str, *, actor: Actor, source: str) -> BackendHealth:
    """Force a backend up or down whatever its probes say (`none` clears it); every gateway follows within its
    poll interval. Audited; a no-op change writes nothing."""
    with transaction.atomic():
        BackendHealth.objects.get_or_create(backend=backend)
        health = BackendHealth.objects.select_for_update().get(pk=backend.pk)
        before = health.override
        if before == override:
            return health
        was_effective = health.effective
        name = actor_name(actor)
        now = timezone.now()
        health.override = override
        health.override_by = "" if override == Override.NONE else name
        health.override_at = None if override == Override.NONE else now
        health.save(update_fields=["override", "override_by", "override_at"])
        words = {Override.UP: "forced up", Override.DOWN: "forced down", Override.NONE: "override cleared"}
        HealthEvent.objects.create(backend=backend, at=now, source=HealthEvent.Source.OVERRIDE, from_state=before,
                                   to_state=override, reason=f"{words[Override(override)]} by {name}",
                                   actor_name=name)
        record_audit(actor, source, AuditEntry.Action.OVERRIDE, "backend", backend.pk, backend.url,
                     {"health_override": [before, override]})
        if health.effective != was_effective:
            bump_health_version()
    return health
