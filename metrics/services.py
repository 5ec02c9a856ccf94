"""Operator writes of the metrics app, audited: how long the traffic history is kept."""
from __future__ import annotations

from django.db import transaction

from metrics.models import RetentionPolicy
from routes.models import AuditEntry
from routes.services import Actor, record_audit


def set_retention(policy: RetentionPolicy, keep_days: int | None, *, actor: Actor, source: str) -> RetentionPolicy:
    """Keep one resolution of the traffic history for `keep_days` days (None: forever), from the next retention
    run. The admin's form has checked the value against the model's constraint."""
    with transaction.atomic():
        policy = RetentionPolicy.objects.select_for_update().get(pk=policy.pk)
        before = policy.keep_days
        if before == keep_days:
            return policy
        policy.keep_days = keep_days
        policy.save(update_fields=["keep_days"])
        record_audit(actor, source, AuditEntry.Action.UPDATE, "retention", policy.pk,
                     policy.get_resolution_display(), {"keep_days": [before, keep_days]})
    return policy
