"""Synthetic traffic for the abuse detection, from a seeded RNG: a route's normal clients (light and heavy,
diurnal swings, newcomers, page loads in clusters) and labelled attackers of each kind (burst, credential stuffing,
path scans, scraping, token sharing) as request events; and `client_windows`, which counts events into ClientWindow
rows with the gateway's own counters and row writer. It knows nothing of the detection, so the same events can go
through a gateway."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from math import pi, sin
from random import Random

from metrics.abuse.windows import rows_of
from metrics.models import ClientWindow
from protocols.abuse.counters import AbuseCounters
from protocols.recorder import Recorder

ATTACK_KINDS = ("burst", "credential_stuffing", "enumeration", "scraping", "token_sharing")
# The route's resources, most requested first; `{id}` is a product number (Zipf-like: some are popular).
PAGES = ("/api/products", "/api/products/{id}", "/api/cart", "/api/search", "/api/users/me", "/api/categories",
         "/api/products/{id}/reviews", "/api/orders", "/api/recommendations", "/api/wishlist", "/api/notifications",
         "/api/checkout", "/api/addresses", "/api/help/faq")
PAGE_WEIGHTS = tuple(1.0 / rank**1.1 for rank in range(1, len(PAGES) + 1))
PRODUCTS = 400
SCAN_PATHS = tuple(f"/api/{folder}{name}" for folder in ("", "admin/", "backup/", "old/", "wp-admin/", "config/",
                                                           ".git/", "uploads/", "private/", "db/")
                   for name in (".env", "wp-login.php", "backup.sql", "config.php", "id_rsa", "web.config",
                                "phpinfo.php", "server-status", ".htpasswd", "dump.tar.gz", "settings.py"))


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the gateway sees it; `credential` is the client's name when it has one (`sub:...`,
    `key:...`, `consumer:...`), else the client is its address."""

    t: float
    address: str
    credential: str | None
    method: str
    path: str
    status: int
    bytes: int

    @property
    def client(self) -> str:
        return self.credential or f"ip:{self.address}"


@dataclass(frozen=True, slots=True)
class Attack:
    """One labelled attack: `client` (as the gateway names it) does `kind` from `start` to `end` (seconds)."""

    kind: str
    client: str
    start: float
    end: float


@dataclass(slots=True)
class Traffic:
    requests: list[Request]
    attacks: list[Attack]
    normal_clients: set[str]
    duration_s: float
    heavy: set[str] = field(default_factory=set)
    newcomers: set[str] = field(default_factory=set)


class _Maker:
    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self.addresses = 0

    def address(self) -> str:
        self.addresses += 1
        return f"10.{self.addresses // 65536 % 256}.{self.addresses // 256 % 256}.{self.addresses % 256}"

    def page(self) -> str:
        path = self.rng.choices(PAGES, PAGE_WEIGHTS)[0]
        product = min(int(self.rng.paretovariate(0.9)), PRODUCTS)
        return path.replace("{id}", str(product))

    def status(self, credential: str | None) -> int:
        roll = self.rng.random()
        if roll < 0.012:
            return 404
        if roll < 0.018 and credential:
            return 401  # an expired token, refreshed on the next request
        if roll < 0.022:
            return self.rng.choice((400, 409, 422))
        return 200

    def visits(self, start: float, end: float, rate: float, swing: float, phase: float,
               period: float) -> Iterator[float]:
        """Page views (Poisson, rate swinging by `swing` over `period`), each a cluster of 1-6 requests."""
        t = start
        while True:
            current = rate * (1.0 + swing * sin(2 * pi * t / period + phase))
            t += self.rng.expovariate(max(current, 1e-6))
            if t >= end:
                return
            yield t
            extra = t
            while self.rng.random() < 0.4 and extra - t < 1.5:
                extra += self.rng.uniform(0.01, 0.3)
                yield extra

    def normal(self, requests: list[Request], start: float, end: float, rate: float, credential: str | None,
               addresses: list[str], period: float) -> None:
        swing, phase = self.rng.uniform(0.2, 0.6), self.rng.uniform(0, 2 * pi)
        address = addresses[0]
        for t in self.visits(start, end, rate, swing, phase, period):
            if len(addresses) > 1 and self.rng.random() < 0.02:
                address = self.rng.choice(addresses)  # a phone and a laptop, now and then
            method = "POST" if self.rng.random() < 0.1 else "GET"
            requests.append(Request(t, address, credential, method, self.page(), self.status(credential),
                                    self.rng.randint(300, 6000)))


def generate(seed: int = 18, *, duration_s: float = 3600.0, clients: int = 160, attacks_per_kind: int = 10,
             attacks_from: float = 900.0) -> Traffic:
    """`clients` normal clients over `duration_s` seconds and `attacks_per_kind` labelled attacks of each kind,
    none starting before `attacks_from` (so that established clients have baselines)."""
    make = _Maker(seed)
    rng = make.rng
    requests: list[Request] = []
    traffic = Traffic(requests, [], set(), duration_s)
    for index in range(clients):
        heavy = index % 12 == 0  # integrations: steady and far busier than a person
        credential = (f"key:integration-{index}" if heavy else
                      f"sub:user-{index}" if rng.random() < 0.5 else None)
        addresses = [make.address() for _ in range(1 if heavy else rng.choice((1, 1, 2, 3)))]
        rate = rng.uniform(3.0, 7.0) if heavy else 10 ** rng.uniform(-1.8, -0.2)
        start = 0.0 if rng.random() < 0.8 else rng.uniform(0, duration_s * 0.8)
        end = duration_s if rng.random() < 0.9 else rng.uniform(start + 60, duration_s)
        make.normal(requests, start, end, rate, credential, addresses, duration_s)
        client = credential or f"ip:{addresses[0]}"
        traffic.normal_clients.add(client)
        if heavy:
            traffic.heavy.add(client)
        if start > 0:
            traffic.newcomers.add(client)
    for number in range(attacks_per_kind):
        for kind in ATTACK_KINDS:
            start = rng.uniform(attacks_from, duration_s - 360)
            length = rng.uniform(90, 300)
            traffic.attacks.append(_attack(make, requests, kind, number, start, start + length, duration_s))
    requests.sort(key=lambda r: r.t)
    return traffic


def _attack(make: _Maker, requests: list[Request], kind: str, number: int, start: float, end: float,
            duration_s: float) -> Attack:
    rng = make.rng
    address = make.address()
    if kind == "burst":
        # A client that behaved for a quarter of an hour and then floods the route's pages.
        credential = f"sub:burster-{number}"
        make.normal(requests, 0.0, duration_s, 10 ** rng.uniform(-1.3, -0.3), credential, [address], duration_s)
        t, rate = start, rng.uniform(15, 40)
        while (t := t + rng.expovariate(rate)) < end:
            requests.append(Request(t, address, credential, "GET", make.page(), 200, rng.randint(300, 6000)))
        return Attack(kind, credential, start, end)
    if kind == "credential_stuffing":
        t, rate = start, rng.uniform(2, 8)
        while (t := t + rng.expovariate(rate)) < end:
            status = 200 if rng.random() < 0.01 else 401
            requests.append(Request(t, address, None, "POST", "/api/login", status, 120))
        return Attack(kind, f"ip:{address}", start, end)
    if kind == "enumeration":
        t, rate, paths = start, rng.uniform(2, 8), list(SCAN_PATHS)
        rng.shuffle(paths)
        index = 0
        while (t := t + rng.expovariate(rate)) < end:
            requests.append(Request(t, address, None, "GET", paths[index % len(paths)], 404, 150))
            index += 1
        return Attack(kind, f"ip:{address}", start, end)
    if kind == "scraping":
        t, rate, product = start, rng.uniform(2.5, 6), rng.randint(1, 50)
        while (t := t + rng.expovariate(rate)) < end:
            product += 1
            path = f"/api/products/{product}" if rng.random() < 0.8 else f"/api/products/{product}/reviews"
            requests.append(Request(t, address, None, "GET", path, 200, rng.randint(2000, 9000)))
        return Attack(kind, f"ip:{address}", start, end)
    # token_sharing: one subject's token used from many addresses at once, each at a person's pace.
    credential = f"sub:shared-{number}"
    for _ in range(rng.randint(20, 50)):
        make.normal(requests, start, end, rng.uniform(0.1, 0.4), credential, [make.address()], duration_s)
    return Attack(kind, credential, start, end)


def client_windows(requests: Iterable[Request], route: str, epoch: datetime, *, window_s: float = 10.0,
                   sources: int = 2, seed: int = 0) -> list[dict[str, object]]:
    """The ClientWindow rows (as field dicts) the gateway's writers would flush for `requests`, counted by the
    gateway's own code: each request taken by one of `sources` processes at random (as a shared listening socket
    hands them out), recorded in that process's AbuseCounters (protocols.abuse.counters) at `epoch` + its time,
    each closed window turned into rows by metrics.abuse.windows.rows_of. `epoch` must be aligned on `window_s`."""
    rng = Random(seed)
    base = epoch.timestamp()
    clock = _Clock(base)
    counters = [AbuseCounters(Recorder(), window_s=window_s, clock=clock) for _ in range(sources)]
    rows: list[dict[str, object]] = []

    def flush(source: int, now: float, final: bool = False) -> None:
        closed = counters[source].take(now, final=final)
        if closed is not None:
            rows.extend(_fields(row) for row in rows_of(closed, f"gateway-{source}"))

    for request in requests:
        now = base + request.t
        clock.now = now
        for source, mine in enumerate(counters):
            if now >= mine.start + window_s:
                flush(source, now)
        source = rng.randrange(sources)
        bytes_in, bytes_out = (request.bytes, 200) if request.method == "POST" else (0, request.bytes)
        # An address client's address is its name: the gateway keeps addresses only for credential clients.
        counters[source].record(route, request.client, request.status, bytes_in, bytes_out, request.path,
                                request.address if request.credential else None)
    for source in range(sources):
        flush(source, clock.now, final=True)
    return rows


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _fields(row: ClientWindow) -> dict[str, object]:
    return {f.name: getattr(row, f.name) for f in ClientWindow._meta.fields if f.name != "id"}
