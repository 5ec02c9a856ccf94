"""Metrics recording micro-benchmark: what the hot-path calls of protocols.recorder and protocols.tracing cost.

A route with an `abuse` block also pays for its per-client counters (protocols.abuse.counters): shown on its own
line, since other routes pay nothing for them.

Prints µs per call and the share of a proxied request's CPU time they add, against the proxy's CPU cost per
request (`--proxy-us`, default 140 µs: the bare uvicorn + pooled client figure of PERF-ANCHORS). The budget
is 5% of throughput.
"""
from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.abuse.counters import AbuseCounters, client_identity  # noqa: E402
from protocols.recorder import Recorder  # noqa: E402
from protocols.tracing import traceparent_for  # noqa: E402

BUDGET = 0.05


def per_call_us(statement, number: int) -> float:
    empty = min(timeit.repeat(lambda: None, number=number, repeat=5))
    best = min(timeit.repeat(statement, number=number, repeat=5))
    return max(0.0, best - empty) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proxy-us", type=float, default=140.0, help="CPU µs the proxy spends per request")
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    recorder = Recorder()
    headers = [(b"host", b"api.example.com"),
               (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    costs = {
        "record_request": per_call_us(lambda: recorder.record_request(
            "users", "GET", 200, 0.0031, 0.0025, 0, 112, "10.0.0.5:8080", None), args.number),
        "connection_opened+closed": per_call_us(lambda: (recorder.connection_opened(),
                                                         recorder.connection_closed()), args.number),
        "traceparent_for": per_call_us(lambda: traceparent_for(headers), args.number),
    }
    total = sum(costs.values())
    for name, cost in costs.items():
        print(f"{name:26s} {cost:6.2f} µs")
    share = total / (args.proxy_us + total)
    verdict = "within" if share < BUDGET else "OVER"
    print(f"{'per request':26s} {total:6.2f} µs = {share * 100:.1f}% of a {args.proxy_us:.0f} µs request "
          f"({verdict} the {BUDGET * 100:.0f}% budget)")
    counters = AbuseCounters(recorder)
    bearer = [*headers, (b"authorization", b"Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")]
    abuse = per_call_us(lambda: counters.record("users", client_identity(None, None, bearer, "10.0.0.9"), 200, 0,
                                                112, "/users/42", None), args.number)
    print(f"{'abuse counters (+route)':26s} {abuse:6.2f} µs = {abuse / (args.proxy_us + abuse) * 100:.1f}% more on "
          "a route with an abuse block")
    return 0 if share < BUDGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
