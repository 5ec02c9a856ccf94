"""Advice on timeouts: a route's `read_timeout_ms` from its observed p99.9, raised when requests reach it (they
time out), lowered when it is far above anything the backends take (a hung backend holds connections that long).
"""
from __future__ import annotations

from metrics.advice.balancing import backend_labels
from metrics.advice.context import Context
from metrics.advice.findings import Finding, evidence, ms, nice_ceiling

RULE = "timeout"
MIN_REQUESTS = 1000  # a p99.9 needs this many requests in the window to mean anything
REACHED = 0.9  # the p99.9 at this share of the read timeout or more: requests hit it
TIMEOUT_SHARE = 0.001  # ...or the gateway's own errors and timeouts reach this share of the requests
RAISE_FACTOR = 2.0  # a timeout that is reached becomes twice the larger of it and the p99.9
HEADROOM = 4.0  # a generous timeout: four times the p99.9...
FLOOR_MS = 1000  # ...and never under a second
FAR_ABOVE = 5.0  # a timeout this many times the generous one is far above use
TIMED = ("http", "websocket", "grpc")


def read_timeout(ctx: Context) -> list[Finding]:
    found = []
    for name, route in ctx.routes.items():
        if route.protocol not in TIMED:
            continue
        total = ctx.route_total(name)
        p999 = total.quantile(0.999)
        if total.count < MIN_REQUESTS or p999 is None:
            continue
        current = route.read_timeout_ms
        timeouts = sum(ctx.live.totals.upstream_errors.get((label, "timeout"), 0) for label in backend_labels(route))
        figures = {"requests": total.count, "p99_ms": ms(total.quantile(0.99)), "p99_9_ms": ms(p999),
                   "read_timeout_ms": current, "gateway_errors": total.errors_gateway,
                   "upstream_timeouts_since_start": timeouts}
        proof = evidence(figures, ctx.start, ctx.until, [f"latency route={name}", f"errors route={name}"],
                         ctx.dashboard(name))
        reached = p999 * 1000 >= REACHED * current
        failing = (total.errors_gateway + timeouts) >= TIMEOUT_SHARE * total.count
        if reached and failing:
            proposed = min(nice_ceiling(RAISE_FACTOR * max(p999 * 1000, current)), 3_600_000)
            text = (f"route {name}: p99.9 latency {ms(p999)} ms reaches its read timeout of {current} ms "
                    f"({total.errors_gateway} gateway errors over the last 7 days, {timeouts} upstream timeouts "
                    f"since the gateway started): raise read_timeout_ms to {proposed}.")
            found.append(Finding(RULE, name, "warning", text, proof, patch={"read_timeout_ms": proposed},
                                 fields=("read_timeout_ms",)))
            continue
        generous = nice_ceiling(max(HEADROOM * p999 * 1000, FLOOR_MS))
        if current >= FAR_ABOVE * generous:
            text = (f"route {name}: read timeout {current} ms is {current / (p999 * 1000):.0f}x its p99.9 latency of "
                    f"{ms(p999)} ms over the last 7 days ({total.count} requests): a hung backend holds each "
                    f"connection that long; set read_timeout_ms to {generous}.")
            found.append(Finding(RULE, name, "info", text, proof, patch={"read_timeout_ms": generous},
                                 fields=("read_timeout_ms",)))
    return found
