"""`{% gateway_overview as overview %}`: the admin home's overview of routes and backends (metrics.overview)."""
from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from metrics import overview
from routes.models import AuditEntry

register = template.Library()


@register.simple_tag(takes_context=True)
def gateway_overview(context: dict[str, Any]) -> overview.Overview | None:
    """The overview for a user who may see the routes; None for anyone else (the home then shows the apps)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("routes.view_route"):
        return None
    return overview.build(timezone.now())


@register.simple_tag(takes_context=True)
def latest_changes(context: dict[str, Any], count: int = 8) -> list[AuditEntry]:
    """The latest configuration changes from the audit trail, for a user who may read it (one query)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("routes.view_auditentry"):
        return []
    return list(AuditEntry.objects.order_by("-created_at", "-id")[:count])
