"""Synthetic traffic for the anomaly detector, from a seeded RNG: a route's normal clients and labelled attackers
(bursts and path scans) as sorted (t, client, path, body_bytes, status) events, and how well a set of flags caught
them. It knows nothing of the detector, so the same traffic can be replayed through a gateway."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate
from math import exp, log, pi, sin
from random import Random

Event = tuple[float, str, str, int, int]  # (t, client, path, body_bytes, status)
Rate = Callable[[float], float]  # requests per second at time t

# The route's paths, most requested first (chosen with Zipf-like weights).
ROUTE_PATHS = ("/api/products", "/api/products/42", "/api/cart", "/api/search", "/api/orders", "/api/users/me",
               "/api/categories", "/api/cart/items", "/api/orders/123", "/api/recommendations", "/api/wishlist",
               "/api/products/42/reviews", "/api/notifications", "/api/checkout", "/api/orders/123/items",
               "/api/addresses", "/api/payments/methods", "/api/stores/7", "/api/orders/123/invoice", "/api/help/faq")
ZIPF_WEIGHTS = tuple(accumulate(1.0 / rank**1.1 for rank in range(1, len(ROUTE_PATHS) + 1)))
# Paths that usually carry a body (searches, carts, orders, reviews): a JSON document of a few hundred bytes.
BODY_PATHS = frozenset({"/api/search", "/api/orders", "/api/cart/items", "/api/wishlist", "/api/products/42/reviews",
                        "/api/checkout", "/api/addresses"})
ERROR_STATUSES = (400, 401, 403, 404, 404, 409, 422, 500, 502, 503)
ERROR_RATIO = 0.02
# What scanners look for: every directory with every file, none of which the route serves.
SCAN_DIRS = ("", "admin/", "backup/", "old/", "wp-admin/", "config/", ".git/", "static/", "uploads/", "cgi-bin/",
             "db/", "private/")
SCAN_FILES = (".env", "wp-login.php", "backup.sql", "config.php", "db.sql", "id_rsa", "web.config", "phpinfo.php",
              "server-status", "credentials.json", ".htpasswd", "dump.tar.gz", "settings.py", "shell.php")
SCAN_PATHS = tuple(f"/api/{folder}{name}" for folder in SCAN_DIRS for name in SCAN_FILES)
# A page view is a cluster of 1-5 requests 10-250 ms apart (a page and what it loads); this is its mean size.
CLUSTER_MORE = 0.35
MEAN_CLUSTER = sum(CLUSTER_MORE**extra for extra in range(5))


@dataclass(frozen=True, slots=True)
class Attack:
    """One attacker's attack: `kind` is "burst" (the route's paths, 30-100 req/s) or "scan" (nonexistent paths
    answered 404); its requests arrive from `start` to `end`."""

    client: str
    kind: str
    start: float
    end: float
    rate: float  # requests per second


@dataclass(frozen=True, slots=True)
class Traffic:
    events: list[Event]  # sorted by time
    attacks: tuple[Attack, ...]
    clients: frozenset[str]  # everyone, attackers included
    heavy: frozenset[str]  # normal clients steadily at 5-8 req/s
    duration_s: float
    window_s: float

    @property
    def normal_clients(self) -> frozenset[str]:
        return self.clients - {attack.client for attack in self.attacks}


def requests(rng: Random, client: str, rate: Rate, peak: float, start: float, end: float, *,
             body_scale: float = 1.0, error_ratio: float = ERROR_RATIO) -> list[Event]:
    """A normal client's requests from `start` to `end`: page views (clusters of requests) arriving so that the
    requests average `rate(t)` per second, which never exceeds `peak`; Zipf-like paths, JSON bodies where a path
    takes one, `error_ratio` of them answered with an error."""
    events: list[Event] = []
    t = start
    while True:
        t += rng.expovariate(peak / MEAN_CLUSTER)
        if t >= end:
            return events
        if rng.random() * peak >= rate(t):
            continue
        at, size = t, 0
        while at < end:
            events.append(_request(rng, at, client, body_scale, error_ratio))
            size += 1
            if size == 5 or rng.random() >= CLUSTER_MORE:
                break
            at += rng.uniform(0.01, 0.25)


def _request(rng: Random, t: float, client: str, body_scale: float, error_ratio: float) -> Event:
    path = rng.choices(ROUTE_PATHS, cum_weights=ZIPF_WEIGHTS)[0]
    body = int(rng.lognormvariate(6.4, 0.8) * body_scale) if path in BODY_PATHS and rng.random() < 0.8 else 0
    status = rng.choice(ERROR_STATUSES) if rng.random() < error_ratio else 200
    return (t, client, path, body, status)


def steady(rate: float) -> Rate:
    return lambda t: rate


def swaying(rng: Random, rate: float, window_s: float) -> Rate:
    """`rate` rising and falling by 30% over a period of 6 to 18 windows, as a user's activity does."""
    period = rng.uniform(6, 18) * window_s
    phase = rng.uniform(0, 2 * pi)
    return lambda t: rate * (1.0 + 0.3 * sin(2 * pi * t / period + phase))


def generate(seed: int = 1, *, clients: int = 500, duration_s: float = 300.0, window_s: float = 10.0,
             heavy_share: float = 0.04, bursts: int = 8, scans: int = 8) -> Traffic:
    """`clients` normal clients over `duration_s` seconds, `bursts` of them bursting and `scans` scanning (half of
    the scanners are extra clients that come only to scan). Rates are log-uniform from 0.05 to 3 req/s, swaying,
    except the heavy ones' (5-8 req/s, steady); a quarter join late and some leave early. Attacks start after three
    windows of normal traffic (and four before the end); a burst lasts 1-3 windows, a scan tries 30-120 paths
    (or stops at the end)."""
    rng = Random(seed)
    names = [f"10.0.{index // 250}.{index % 250 + 1}" for index in range(clients)]
    heavy = frozenset(rng.sample(names, round(clients * heavy_share)))
    always: list[str] = []  # present from start to end: the only ones an attack is planted in
    events: list[Event] = []
    for name in names:
        start = rng.uniform(0, duration_s / 2) if rng.random() < 0.25 else 0.0
        end = rng.uniform(duration_s / 2, duration_s) if rng.random() < 0.15 else duration_s
        if name in heavy:
            base = rng.uniform(5, 8)
            rate, peak = steady(base), base
        else:
            base = exp(rng.uniform(log(0.05), log(3.0)))
            rate, peak = swaying(rng, base, window_s), base * 1.3
            if start == 0.0 and end == duration_s:
                always.append(name)
        events += requests(rng, name, rate, peak, start, end, body_scale=rng.lognormvariate(0, 0.5))

    attacks = []
    own_scanners = scans - scans // 2
    chosen = iter(rng.sample(always, bursts + own_scanners))
    latest = max(3 * window_s, duration_s - 4 * window_s)
    for _ in range(bursts):
        start = rng.uniform(3 * window_s, latest)
        attack = Attack(next(chosen), "burst", start, min(duration_s, start + rng.uniform(1, 3) * window_s),
                        rng.uniform(30, 100))
        attacks.append(attack)
        events += _burst(rng, attack)
    for index in range(scans):
        client = next(chosen) if index < own_scanners else f"203.0.113.{index + 1}"
        start = rng.uniform(3 * window_s, latest)
        speed = rng.uniform(2, 10)
        attack = Attack(client, "scan", start, min(duration_s, start + rng.randint(30, 120) / speed), speed)
        attacks.append(attack)
        events += _scan(rng, attack)
    events.sort()
    everyone = frozenset(names) | {attack.client for attack in attacks}
    return Traffic(events, tuple(attacks), everyone, heavy, duration_s, window_s)


def _burst(rng: Random, attack: Attack) -> list[Event]:
    events = []
    t = attack.start
    while (t := t + rng.expovariate(attack.rate)) < attack.end:
        events.append(_request(rng, t, attack.client, 1.0, ERROR_RATIO))
    return events


def _scan(rng: Random, attack: Attack) -> list[Event]:
    paths = list(SCAN_PATHS)
    rng.shuffle(paths)
    events: list[Event] = []
    t = attack.start
    while (t := t + rng.expovariate(attack.rate)) < attack.end:
        events.append((t, attack.client, paths[len(events) % len(paths)], 0, 404))
    return events


@dataclass(frozen=True, slots=True)
class Detection:
    """When an attack was first flagged: after how many of the attacker's requests since the attack began
    (counting the flagged one) and how many seconds; None when it never was."""

    attack: Attack
    requests: int | None
    seconds: float | None


@dataclass(frozen=True, slots=True)
class Report:
    detections: tuple[Detection, ...]
    normal_clients: int
    false_positives: tuple[str, ...]  # normal clients flagged at least once
    early: tuple[str, ...]  # attackers flagged before their attack began

    @property
    def recall(self) -> float:
        return sum(found.requests is not None for found in self.detections) / max(1, len(self.detections))

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / max(1, self.normal_clients)

    def describe(self) -> str:
        lines = [f"recall {self.recall:.0%} of {len(self.detections)} attacks, false positives "
                 f"{len(self.false_positives)} of {self.normal_clients} normal clients "
                 f"({self.false_positive_rate:.1%}), flagged before their attack: {len(self.early)}"]
        for found in self.detections:
            attack = found.attack
            when = ("missed" if found.seconds is None
                    else f"flagged at request {found.requests}, {found.seconds:.2f} s in")
            lines.append(f"  {attack.kind} {attack.client} at {attack.rate:.0f}/s for "
                         f"{attack.end - attack.start:.0f} s: {when}")
        return "\n".join(lines)


def evaluate(traffic: Traffic, flags: Iterable[tuple[float, str]]) -> Report:
    """How well `flags` (the time and client of every request judged anomalous) caught the traffic's attacks."""
    attacks = {attack.client: attack for attack in traffic.attacks}
    first: dict[str, float] = {}
    flagged: set[str] = set()
    early: set[str] = set()
    for t, client in flags:
        flagged.add(client)
        attack = attacks.get(client)
        if attack is None:
            continue
        if t < attack.start:
            early.add(client)
        elif t <= attack.end and client not in first:
            first[client] = t
    detections = []
    for attack in traffic.attacks:
        at = first.get(attack.client)
        if at is None:
            detections.append(Detection(attack, None, None))
            continue
        count = sum(1 for t, client, *_ in traffic.events if client == attack.client and attack.start <= t <= at)
        detections.append(Detection(attack, count, at - attack.start))
    normal = traffic.normal_clients
    return Report(tuple(detections), len(normal), tuple(sorted(flagged & normal)), tuple(sorted(early)))
