"""The verdicts and personalized limits this process applies: an immutable table, swapped whole, read per request
with one dict lookup.

The worker's flusher thread reads the verdicts in force and the personalized limits from the database every
second or so (metrics.abuse.refresh), builds a new table with `table_of` and installs it with
`Sanctions.replace`: one attribute assignment, so a request on the event loop sees the old table or the new one,
never half of either. The table is keyed by route, then client (protocols.abuse.counters' identity), so a route
without sanctions costs the proxy one lookup that finds nothing.

What a sanction does (`judge`), only on a route whose `abuse` block asks for it:
- in `enforce` mode, a `block` verdict in force answers 429 `client_blocked` (protocols.errors.ClientBlocked);
  a `lower` verdict in force multiplies the client's rate limit by the verdict's factor (the route's `factor`
  when the verdict has none). Verdicts of routes in `shadow` mode change no answer.
- with `personalized_limits`, a client with a personalized limit is limited to it (requests per its window)
  instead of the route's limit; a `lower` verdict then lowers that one.
A verdict's expiry is checked per request against the wall clock, so it ends on time; a lifted verdict is gone
from the next table.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from protocols.abuse.config import BLOCK, LOWER, AbusePolicy
from protocols.errors import ClientBlocked, verdict_url

PERSONALIZED = "personalized"  # rusta_abuse_actions_total's label for a 429 under a personalized limit


@dataclass(frozen=True, slots=True)
class Sanction:
    """What applies to one client on one route: a verdict in force (`verdict_id` 0 when none; `action` block or
    lower, until `expires_at`, Unix seconds) and a personalized limit (`limit` requests per `limit_window_s`; 0
    when none). `kind`, `feature`, `value` and `baseline` say why: the verdict's kind and its main deviating
    feature."""

    verdict_id: int = 0
    action: str = ""
    factor: float = 1.0
    expires_at: float = 0.0
    kind: str = ""
    feature: str = ""
    value: Any = None
    baseline: Any = None
    limit: int = 0
    limit_window_s: float = 0.0

    def reason(self) -> dict[str, Any]:
        """The verdict's reason as a blocked client's answer gives it."""
        return {"kind": self.kind, "feature": self.feature, "value": self.value, "baseline": self.baseline}


SanctionTable = Mapping[str, Mapping[str, Sanction]]  # route -> client -> sanction
EMPTY_TABLE: SanctionTable = MappingProxyType({})


class Sanctions:
    """This process's table (`table`), replaced whole by the worker (`replace`); the proxy only reads it."""

    __slots__ = ("table", "refreshed_at")

    def __init__(self) -> None:
        self.table: SanctionTable = EMPTY_TABLE
        self.refreshed_at = 0.0

    def replace(self, table: SanctionTable, at: float) -> None:
        self.table = table
        self.refreshed_at = at


@dataclass(frozen=True, slots=True)
class LimitChange:
    """How a sanction changes one request's rate limit: the client's own `limit` per `window_s` (0: the route's)
    times `factor` (1: not lowered). `action` is `lower` when a verdict lowered it, else `personalized`."""

    limit: int
    window_s: float
    factor: float
    verdict_id: int
    action: str

    def applied(self, route_limit: int, route_window_s: float) -> tuple[int, float]:
        """The limit and window this client gets instead of the route's."""
        limit, window = (self.limit, self.window_s) if self.limit else (route_limit, route_window_s)
        if self.factor < 1:
            limit = max(1, math.floor(limit * self.factor + 1e-9))
        return limit, window

    def reason(self, limit: int, window_s: float) -> str:
        """What a 429 under this limit says about it."""
        if self.verdict_id:
            return (f"This client's limit was lowered to {limit} per {window_s:g} s by verdict {self.verdict_id} "
                    f"(see {verdict_url(self.verdict_id)}).")
        return f"This client is held to its personalized limit of {limit} per {window_s:g} s."


def judge(sanction: Sanction | None, policy: AbusePolicy, route: str,
          clock: Callable[[], float] = time.time) -> LimitChange | None:
    """What `sanction` does to a request of `route` under `policy` (see the module docstring): None, a
    LimitChange, or ClientBlocked raised."""
    if sanction is None:
        return None
    factor, verdict_id = 1.0, 0
    if sanction.verdict_id and policy.enforcing:
        left = sanction.expires_at - clock()
        if left > 0:
            if sanction.action == BLOCK:
                raise ClientBlocked(route, sanction.verdict_id, max(1, math.ceil(left)), sanction.reason())
            factor, verdict_id = sanction.factor, sanction.verdict_id
    limit = sanction.limit if policy.personalized_limits else 0
    if not limit and not verdict_id:
        return None
    return LimitChange(limit, sanction.limit_window_s, factor, verdict_id, LOWER if verdict_id else PERSONALIZED)


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """A verdict in force as the database gives it (metrics.abuse.refresh reads them)."""

    id: int
    route: str
    client: str
    action: str
    factor: float | None
    expires_at: float
    kind: str
    features: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class LimitRow:
    """A personalized limit as the database gives it."""

    route: str
    client: str
    limit: int
    window_s: float


def main_feature(features: Iterable[Any]) -> dict[str, Any]:
    """The feature that deviated most (highest absolute score) of a verdict's list; {} when it has none."""
    best: dict[str, Any] = {}
    best_score = -1.0
    for feature in features:
        if not isinstance(feature, dict):
            continue
        score = feature.get("score")
        score = abs(float(score)) if isinstance(score, (int, float)) and not isinstance(score, bool) else 0.0
        if score > best_score:
            best, best_score = feature, score
    return best


def _stronger(new: VerdictRow, old: VerdictRow | None, factor: float, old_factor: float) -> bool:
    """A block beats a lowered limit; of two blocks the one that lasts longer, of two lowers the lower factor."""
    if old is None:
        return True
    if (new.action == BLOCK) != (old.action == BLOCK):
        return new.action == BLOCK
    if new.action == BLOCK:
        return new.expires_at > old.expires_at
    return factor < old_factor


def table_of(verdicts: Iterable[VerdictRow], limits: Iterable[LimitRow],
             factors: Mapping[str, float] | None = None) -> SanctionTable:
    """The table of these verdicts (shadow ones are skipped) and personalized limits. `factors` are the routes'
    own `factor`, for `lower` verdicts without one."""
    factors = factors or {}
    chosen: dict[tuple[str, str], tuple[VerdictRow, float]] = {}
    for row in verdicts:
        if row.action not in (BLOCK, LOWER):
            continue
        factor = row.factor if row.factor is not None else factors.get(row.route, 0.25)
        key = (row.route, row.client)
        old = chosen.get(key)
        if _stronger(row, old[0] if old else None, factor, old[1] if old else 1.0):
            chosen[key] = (row, factor)
    own = {(row.route, row.client): row for row in limits if row.limit > 0 and row.window_s > 0}
    table: dict[str, dict[str, Sanction]] = {}
    for key in chosen.keys() | own.keys():
        verdict, factor = chosen.get(key, (None, 1.0))
        limit = own.get(key)
        fields: dict[str, Any] = {}
        if verdict is not None:
            feature = main_feature(verdict.features)
            fields = {"verdict_id": verdict.id, "action": verdict.action, "factor": factor,
                      "expires_at": verdict.expires_at, "kind": verdict.kind, "feature": feature.get("name", ""),
                      "value": feature.get("value"), "baseline": feature.get("baseline")}
        if limit is not None:
            fields.update(limit=limit.limit, limit_window_s=limit.window_s)
        table.setdefault(key[0], {})[key[1]] = Sanction(**fields)
    return MappingProxyType({route: MappingProxyType(clients) for route, clients in table.items()})
