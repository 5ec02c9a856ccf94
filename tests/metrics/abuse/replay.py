"""The offline evaluation: the generator's traffic counted into ClientWindow rows, stored window by window as the
gateways would flush them, the real detection run every interval, and what it found scored against the labels."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from metrics.abuse.detection import detect
from metrics.models import ClientWindow
from routes.services import save_route
from tests.support.attack_traffic import ATTACK_KINDS, Traffic, client_windows

EPOCH = datetime(2026, 12, 1, tzinfo=UTC)
ROUTE = "shop"


@dataclass(slots=True)
class Evaluation:
    """Per attack kind the attacks caught (a finding of that kind on the attacker during its attack) out of all;
    the normal clients' minutes with a finding out of all their active minutes."""

    caught: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    attacks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    delays: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    flagged_minutes: set[tuple[str, int]] = field(default_factory=set)
    normal_minutes: set[tuple[str, int]] = field(default_factory=set)
    flagged_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    runs: int = 0

    def recall(self, kind: str) -> float:
        return self.caught[kind] / self.attacks[kind]

    @property
    def false_positive_rate(self) -> float:
        return len(self.flagged_minutes) / len(self.normal_minutes)

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {self.caught[kind]}/{self.attacks[kind]} ({self.recall(kind):.2f})"
                          for kind in ATTACK_KINDS)
        return (f"recall: {kinds}; false positives: {len(self.flagged_minutes)} of {len(self.normal_minutes)} "
                f"normal client-minutes ({100 * self.false_positive_rate:.3f}%) {dict(self.flagged_kinds)}")


def replay(traffic: Traffic, abuse: dict[str, Any], *, interval_s: float = 10.0, window_s: float = 10.0) -> Evaluation:
    """Store each window once it has ended, run `detect` every `interval_s` of the traffic's time, and score."""
    save_route({"name": ROUTE, "external_path": "/shop", "methods": ["GET", "POST"], "abuse": abuse,
                "backends": [{"host": "http://127.0.0.1", "port": 9}]}, actor=None, source="test")
    rows = client_windows(traffic.requests, ROUTE, EPOCH, window_s=window_s)
    rows.sort(key=lambda row: row["start"])  # type: ignore[arg-type, return-value]
    found: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    stored = 0
    steps = int(traffic.duration_s // interval_s)
    result = Evaluation()
    for step in range(1, steps + 1):
        now = EPOCH + timedelta(seconds=step * interval_s)
        flushed = stored
        while flushed < len(rows) and rows[flushed]["start"] + timedelta(seconds=window_s) <= now:  # type: ignore[operator]
            flushed += 1
        ClientWindow.objects.bulk_create([ClientWindow(**row) for row in rows[stored:flushed]])
        stored = flushed
        for route_run in detect(now, interval_s=interval_s).routes:
            for client, kind, start in route_run.findings:
                found[(client, kind)].append(now)
                if client in traffic.normal_clients:
                    result.flagged_minutes.add((client, int((start - EPOCH).total_seconds() // 60)))
                    result.flagged_kinds[kind] += 1
        result.runs += 1
    for request in traffic.requests:
        if request.client in traffic.normal_clients:
            result.normal_minutes.add((request.client, int(request.t // 60)))
    for attack in traffic.attacks:
        result.attacks[attack.kind] += 1
        begun, over = EPOCH + timedelta(seconds=attack.start), EPOCH + timedelta(seconds=attack.end + 3 * window_s)
        during = [at for at in found.get((attack.client, attack.kind), []) if begun <= at <= over]
        if during:
            result.caught[attack.kind] += 1
            result.delays[attack.kind].append((min(during) - begun).total_seconds())
    return result
