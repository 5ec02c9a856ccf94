"""Applying one piece of advice, on an operator's request only: the advice is computed again, its draft checked
against the route as it is now, and saved through routes.services (validated, atomic, audited with source
"advice", the configuration version bumped). Advice that no longer matches is refused, saying why."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from metrics.advice import engine
from metrics.advice.drafts import DraftRefused, check_draft
from metrics.procfiles import Combined
from routes.models import AuditEntry, Route
from routes.secrets import redact
from routes.services import Actor, diff, save_route


class AdviceNotFound(Exception):
    """No advice has this id, nor ever could (an unknown rule, a malformed id)."""


class StaleAdvice(Exception):
    """The advice was made for a route or traffic that changed since: `reason` says what, `current` is the id of
    the advice now offered for the same rule and route, if any."""

    def __init__(self, reason: str, current: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.current = current


@dataclass(frozen=True)
class Applied:
    advice: engine.Advice
    route: Route
    audit: AuditEntry

    def as_dict(self) -> dict[str, Any]:
        return {"applied": self.advice.id, "route": self.route.name,
                "changes": self.audit.changes, "audit_entry": self.audit.pk}


def apply_advice(advice_id: str, *, actor: Actor, now: datetime, live: Combined | None = None,
                 source: str = "advice") -> Applied:
    rule, _, rest = advice_id.partition(":")
    route_name, _, made_of = rest.rpartition(":")
    if rule not in engine.RULES or not route_name or not made_of:
        raise AdviceNotFound(f"no advice has the id {advice_id!r}")
    run = engine.advise(now, live, llm="cached")
    item = run.find(advice_id)
    if item is None:
        raise _why_stale(run, rule, route_name, advice_id)
    if item.draft is None:
        raise AdviceNotFound(f"advice {advice_id} has no draft to apply")
    with transaction.atomic():
        route = Route.objects.select_for_update().filter(name=route_name).first()
        if route is None:
            raise StaleAdvice(f"route {route_name!r} no longer exists")
        try:
            draft = check_draft(route, item.draft.patch, item.finding.fields)
        except DraftRefused as refused:
            raise StaleAdvice(f"the draft no longer passes the checks: {refused.reason}") from refused
        if draft.base != item.draft.base:
            raise StaleAdvice(f"route {route_name!r} changed while the advice was applied; look again")
        save_route(draft.patch, actor=actor, source=source, route=route, partial=True)
        audit = AuditEntry.objects.filter(object_type="route", object_id=str(route.pk)).order_by("-id").first()
        assert audit is not None  # save_route writes it in this transaction
    return Applied(item, route, audit)


def _why_stale(run: engine.AdviceRun, rule: str, route_name: str, advice_id: str) -> StaleAdvice:
    if route_name != engine.GATEWAY and not Route.objects.filter(name=route_name).exists():
        return StaleAdvice(f"route {route_name!r} no longer exists")
    same = next((item for item in run.items if item.finding.rule == rule
                 and (item.finding.route or engine.GATEWAY) == route_name), None)
    shown = engine.shown_before(advice_id)
    changed = ""
    if shown is not None and same is not None and same.draft is not None:
        fields = sorted(diff(shown, redact(same.draft.before)))
        changed = f" (changed: {', '.join(fields)})" if fields else ""
    if same is None:
        return StaleAdvice(f"rule {rule} no longer advises anything for {route_name!r}: the change is in place or "
                           "the traffic changed")
    return StaleAdvice(f"route {route_name!r} or its traffic changed since this advice was made{changed}; the "
                       f"advice now is {same.id}", current=same.id)
