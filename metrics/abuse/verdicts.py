"""Verdict writes: the detection's (a finding recorded, or the client's verdict in force extended) and the
operator's lift, atomic and audited (the admin and the API both call `lift_verdict`)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet

from metrics.abuse.signatures import Finding
from metrics.models import Verdict, VerdictAction
from protocols.abuse.config import AbusePolicy
from routes.models import AuditEntry
from routes.services import Actor, actor_name, record_audit


def in_force(now: datetime) -> Q:
    """The verdicts the gateway applies at `now`: not expired, not lifted."""
    return Q(expires_at__gt=now, lifted_at__isnull=True)


def active(queryset: QuerySet[Verdict], now: datetime, flag: bool = True) -> QuerySet[Verdict]:
    return queryset.filter(in_force(now)) if flag else queryset.exclude(in_force(now))


def action_of(policy: AbusePolicy) -> tuple[str, float | None]:
    """What the gateway does about a verdict: record only in shadow mode, else the route's action."""
    if not policy.enforcing:
        return VerdictAction.SHADOW, None
    if policy.action == VerdictAction.LOWER:
        return VerdictAction.LOWER, policy.factor
    return VerdictAction.BLOCK, None


def record_finding(route: str, policy: AbusePolicy, finding: Finding, model_version: str,
                   now: datetime) -> str:
    """The finding as a new verdict, or its client's verdict in force of the same kind extended to now +
    duration_s; "created", "extended", or "pardoned" when an operator lifted such a verdict whose term has not
    run out (the lift stands for that episode; a client still at it once it would have expired is judged anew)."""
    window = finding.window
    window_end = window.start + timedelta(seconds=window.window_s)
    expires = now + timedelta(seconds=policy.duration_s)
    action, factor = action_of(policy)
    same = Verdict.objects.filter(route=route, client=window.client, kind=finding.kind, expires_at__gt=now)
    with transaction.atomic():
        current = same.filter(lifted_at__isnull=True).select_for_update().order_by("-expires_at").first()
        if current is None:
            if same.filter(lifted_at__isnull=False).exists():
                return "pardoned"
            Verdict.objects.create(route=route, client=window.client, kind=finding.kind, features=finding.features,
                                   score=round(finding.score, 3), model_version=model_version, action=action,
                                   factor=factor, window_start=window.start, window_end=window_end,
                                   expires_at=expires)
            return "created"
        current.expires_at = max(current.expires_at, expires)
        current.window_end = max(current.window_end, window_end)
        current.action, current.factor = action, factor
        if finding.score > current.score:
            current.score, current.features = round(finding.score, 3), finding.features
            current.model_version = model_version
        current.save(update_fields=["expires_at", "window_end", "action", "factor", "score", "features",
                                    "model_version"])
        return "extended"


class VerdictLifted(Exception):
    """The verdict was lifted already (by `lifted_by`)."""


def lift_verdict(verdict: Verdict, reason: str = "", *, actor: Actor, source: str,
                 now: datetime | None = None) -> Verdict:
    """End a verdict now (the gateways stop applying it at their next read), with the operator's reason; one
    audit row naming the verdict. VerdictLifted when it was lifted before."""
    from django.utils import timezone

    moment = now or timezone.now()
    with transaction.atomic():
        verdict = Verdict.objects.select_for_update().get(pk=verdict.pk)
        if verdict.lifted_at is not None:
            raise VerdictLifted(f"Verdict {verdict.pk} was lifted at {verdict.lifted_at.isoformat()} by "
                                f"{verdict.lifted_by or 'system'}.")
        verdict.lifted_at, verdict.lifted_by, verdict.lift_reason = moment, actor_name(actor), reason[:500]
        verdict.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        record_audit(actor, source, AuditEntry.Action.UPDATE, "verdict", verdict.pk,
                     f"{verdict.kind} verdict on {verdict.client} ({verdict.route})",
                     {"lifted_at": [None, moment.isoformat()], "lift_reason": ["", verdict.lift_reason]})
    return verdict
