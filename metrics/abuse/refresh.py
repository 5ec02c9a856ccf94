"""The table of sanctions a gateway process applies, read from the database: the verdicts in force of the routes
that enforce them, and the personalized limits of the routes that use them (protocols.abuse.sanctions)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from metrics.models import ClientLimit, Verdict, VerdictAction
from protocols.abuse.config import AbusePolicy
from protocols.abuse.sanctions import EMPTY_TABLE, LimitRow, SanctionTable, VerdictRow, table_of


def load_table(now: datetime, routes: Iterable[tuple[str, AbusePolicy]]) -> SanctionTable:
    """The sanctions of these routes (name and abuse policy) at `now`. Two small queries at most, each only for
    the routes that need it: verdicts in force (not expired, not lifted, not shadow) of the routes in `enforce`
    mode, and the limits of the routes with `personalized_limits`."""
    enforcing: dict[str, float] = {}
    personalized: list[str] = []
    for name, policy in routes:
        if policy.enforcing:
            enforcing[name] = policy.factor
        if policy.personalized_limits:
            personalized.append(name)
    if not enforcing and not personalized:
        return EMPTY_TABLE
    verdicts: list[VerdictRow] = []
    if enforcing:
        found = (Verdict.objects.filter(route__in=list(enforcing), expires_at__gt=now, lifted_at__isnull=True,
                                        action__in=[VerdictAction.BLOCK, VerdictAction.LOWER])
                 .values_list("id", "route", "client", "action", "factor", "expires_at", "kind", "features"))
        verdicts = [VerdictRow(pk, route, client, action, factor, expires.timestamp(), kind,
                               features if isinstance(features, list) else [])
                    for pk, route, client, action, factor, expires, kind, features in found]
    limits: list[LimitRow] = []
    if personalized:
        limits = [LimitRow(route, client, limit, window_s) for route, client, limit, window_s in
                  ClientLimit.objects.filter(route__in=personalized).values_list("route", "client", "limit",
                                                                                  "window_s")]
    return table_of(verdicts, limits, enforcing)
