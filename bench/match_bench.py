"""Route-matching micro-benchmark: matches per second of protocols.table.RouteTable on 1,000 routes."""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as `python bench/match_bench.py`: make the project importable without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.table import BackendSpec, RouteSpec, RouteTable  # noqa: E402

TARGET_MATCHES_PER_SECOND = 200_000
HOST = "api.example.com"

# Route shapes seen in real gateways; `{n}` is the service number, `{...}` names are path parameters.
STATIC_SHAPES = (
    "/svc{n}/status",
    "/svc{n}/items",
    "/svc{n}/items/search",
    "/api/v1/svc{n}/health",
    "/svc{n}/admin/settings/export",
)
PARAM_SHAPES = (
    "/svc{n}/items/{{id}}",
    "/svc{n}/items/{{id}}/detail",
    "/svc{n}/users/{{user_id}}/orders/{{order_id}}",
    "/api/v1/svc{n}/accounts/{{account}}/balance",
    "/svc{n}/files/{{bucket}}/{{key}}",
)


@dataclass(frozen=True, slots=True)
class Probe:
    """One request of the stream and the route name it must resolve to (None: no route)."""

    method: str
    path: str
    expected: str | None


def build_specs(services: int = 100) -> list[RouteSpec]:
    """`services` x 10 routes, half of them with `{param}` placeholders."""
    backend = (BackendSpec(id=1, scheme="http", host="127.0.0.1", port=9101),)
    specs: list[RouteSpec] = []
    for n in range(services):
        for kind, shapes in (("s", STATIC_SHAPES), ("p", PARAM_SHAPES)):
            for index, shape in enumerate(shapes):
                route_id = len(specs) + 1
                specs.append(RouteSpec(
                    id=route_id,
                    name=f"{kind}{n}-{index}",
                    external_path=shape.format(n=n),
                    methods=("GET", "POST") if index % 2 else ("GET",),
                    backends=backend,
                    order=route_id,
                ))
    return specs


def _concrete(pattern: str, rng: random.Random) -> str:
    """A request path for a pattern: each `{param}` replaced by a plausible value."""
    parts = []
    for segment in pattern.split("/"):
        if segment.startswith("{"):
            segment = rng.choice((str(rng.randint(1, 99_999)), f"u-{rng.randint(1, 999)}", "a1b2c3d4"))
        parts.append(segment)
    return "/".join(parts)


def build_stream(specs: list[RouteSpec], size: int = 20_000, miss_share: float = 0.05,
                 seed: int = 1) -> list[Probe]:
    """A shuffled mix of static and parameter paths (about half each) plus a few paths no route serves."""
    rng = random.Random(seed)
    statics = [s for s in specs if "{" not in s.external_path]
    params = [s for s in specs if "{" in s.external_path]
    probes: list[Probe] = []
    for _ in range(size):
        roll = rng.random()
        if roll < miss_share:
            probes.append(Probe("GET", f"/svc{rng.randint(0, 999)}/unknown/{rng.randint(1, 99)}", None))
            continue
        spec = rng.choice(statics if roll < (1 + miss_share) / 2 else params)
        path = _concrete(spec.external_path, rng)
        if rng.random() < 0.1:
            path += "/"  # clients do send trailing slashes
        probes.append(Probe("GET", path, spec.name))
    return probes


def verify(table: RouteTable, probes: list[Probe]) -> list[str]:
    """Mismatches between what the table answers and what each probe expects; a fast wrong matcher is no result."""
    errors = []
    for probe in probes:
        route = table.match(probe.method, HOST, probe.path).route
        got = route.name if route is not None else None
        if got != probe.expected:
            errors.append(f"{probe.method} {probe.path}: expected {probe.expected}, got {got}")
    return errors


def measure(table: RouteTable, probes: list[Probe], seconds: float) -> tuple[int, float]:
    """Match the stream over and over for about `seconds`; returns (matches, elapsed seconds)."""
    match = table.match
    requests = [(p.method, p.path) for p in probes]
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    now = started
    while now < deadline:
        for method, path in requests:
            match(method, HOST, path)
        count += len(requests)
        now = time.perf_counter()
    return count, now - started


def run(seconds: float = 2.0, warmup: float = 0.3, slices: int = 5) -> dict[str, Any]:
    """Build the table and stream, check correctness, measure; the result as plain data.

    The budget is cut into slices and the median slice is reported: on a shared machine one slice
    that loses the core to a neighbour should not move the figure.
    """
    specs = build_specs()
    table = RouteTable(specs, version=1)
    probes = build_stream(specs)
    errors = verify(table, probes)
    if errors:
        return {"ok": False, "errors": errors[:10], "mismatches": len(errors)}
    measure(table, probes, warmup)
    runs = [measure(table, probes, seconds / slices) for _ in range(slices)]
    rates = sorted(count / elapsed for count, elapsed in runs)
    rate = statistics.median(rates)
    return {
        "ok": True,
        "routes": len(table),
        "param_routes": sum(1 for r in table.routes if not r.is_static),
        "stream": len(probes),
        "seconds": round(sum(elapsed for _, elapsed in runs), 3),
        "matches": sum(count for count, _ in runs),
        "matches_per_s": round(rate),
        "slowest_slice_per_s": round(rates[0]),
        "fastest_slice_per_s": round(rates[-1]),
        "target_per_s": TARGET_MATCHES_PER_SECOND,
        "pass": rate >= TARGET_MATCHES_PER_SECOND,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget of the measured loop")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    result = run(args.seconds)
    if args.json:
        print(json.dumps(result))
    elif not result["ok"]:
        print(f"route matching: WRONG ANSWERS ({result['mismatches']}), not measured", file=sys.stderr)
        for line in result["errors"]:
            print(f"  {line}", file=sys.stderr)
    else:
        verdict = "PASS" if result["pass"] else "FAIL"
        print(f"route matching: {result['matches_per_s']:,} matches/s on {result['routes']} routes "
              f"({result['param_routes']} with parameters), target >= {TARGET_MATCHES_PER_SECOND:,}/s: {verdict}")
    # A wrong matcher is an error; a slow one is only reported.
    return 0 if result["ok"] else 2


if __name__ == "__main__":
    sys.exit(main())
