"""Cache purges requested from the control plane, and their delivery to every gateway process.

A purge is written as a CachePurge row and announced by moving `ConfigState.cache_purge_id` in the same
transaction (with its audit entry), exactly as a route change moves `version`. Each gateway process's table
watcher already polls that one row; a `PurgeFollower` there sees the id move, reads the rows it has not applied
and hands each to its ResponseCache (`post_purge`, thread-safe). A process starting up skips the purges made
before it: its memory cache is empty, and the shared Redis store was purged by the processes that were running.
"""
from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from protocols.cache.keys import parse_url_key
from routes.models import AuditEntry, CachePurge, ConfigState, Route
from routes.services import Actor, ConfigError, actor_name, record_audit

log = logging.getLogger(__name__)
KEEP_ROWS_FOR = datetime.timedelta(days=1)


@dataclass(frozen=True)
class PurgeSpec:
    """What one purge removes: `route` None means every route, `url` None every URL."""

    id: int
    route: str | None
    url: str | None


def request_purge(*, route: str | None = None, key: str | None = None, actor: Actor, source: str) -> CachePurge:
    """Ask every gateway process to drop cached answers: all (no route, no key), a route's, or one URL key's
    (`GET example.com/items?a=1`, or a URL; the method defaults to GET). Raises ConfigError for an unknown route
    or an unreadable key. Atomic, audited, and announced on commit."""
    errors: dict[str, list[str]] = {}
    if route is not None and (not isinstance(route, str) or not Route.objects.filter(name=route).exists()):
        errors["route"] = [f"No route is named {route!r}."]
    url = None
    if key is not None:
        if not isinstance(key, str) or not key.strip() or len(key) > 4000:
            errors["key"] = ["Must be a URL key like \"GET example.com/items?a=1\" (at most 4000 characters)."]
        else:
            url = parse_url_key(key)
    if errors:
        raise ConfigError(errors)
    with transaction.atomic():
        purge = CachePurge.objects.create(route=route or "", key=url or "", requested_by=actor_name(actor))
        ConfigState.objects.get_or_create(pk=1)
        ConfigState.objects.filter(pk=1).update(cache_purge_id=purge.pk, changed_at=timezone.now())
        what = url or "all URLs"
        record_audit(actor, source, AuditEntry.Action.PURGE, "cache", purge.pk,
                     f"{what} of {route or 'every route'}", {"route": [None, route], "key": [None, url]})
        CachePurge.objects.filter(created_at__lt=timezone.now() - KEEP_ROWS_FOR).delete()
    return purge


def purges_after(purge_id: int) -> list[PurgeSpec]:
    """The purges with a larger id, oldest first."""
    rows = CachePurge.objects.filter(pk__gt=purge_id).order_by("pk").values_list("pk", "route", "key")
    return [PurgeSpec(pk, route or None, key or None) for pk, route, key in rows]


class PurgeFollower:
    """Applies control-plane purges to one process's cache. The table watcher calls `follow(cache_purge_id)`
    with the id it read in its poll (routes.snapshot.current_versions)."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache  # a protocols.cache.ResponseCache
        self.seen: int | None = None

    def follow(self, purge_id: int) -> int:
        """Apply the purges made since the last call; the first call only records where we are. Returns how
        many were applied."""
        if self.seen is None:
            self.seen = purge_id
            return 0
        if purge_id == self.seen:
            return 0
        applied = 0
        for spec in purges_after(self.seen):
            self.cache.post_purge(spec.route, spec.url)
            self.seen = spec.id
            applied += 1
            log.info("cache purge %s applied: %s of %s", spec.id, spec.url or "all URLs", spec.route or "every route")
        self.seen = max(self.seen, purge_id)
        return applied


__all__ = ["PurgeFollower", "PurgeSpec", "purges_after", "request_purge"]
