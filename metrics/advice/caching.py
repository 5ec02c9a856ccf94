"""Advice on caching: routes worth a response cache are read-mostly (GET and HEAD), busy, slow enough that a hit
saves time, mostly successful, and have no cache block yet."""
from __future__ import annotations

from metrics.advice.context import Context
from metrics.advice.findings import Finding, evidence, ms, share

RULE = "cache"
MIN_REQUESTS = 5000  # over the window
READ_SHARE = 0.9  # of GET and HEAD among the requests
SUCCESS_SHARE = 0.9  # neither 4xx nor 5xx
MIN_P50_S = 0.05  # a backend answering faster gains little from a cache
MIN_LIVE_REQUESTS = 100  # the workers' method counts are used once they saw this many of the route's requests
TTL_S = 60


def read_share(ctx: Context, route: str, methods: list[str]) -> tuple[float, str]:
    """The share of GET and HEAD requests: from the workers' counts by method when they saw enough of the route,
    else 1 or 0 from the methods the route allows."""
    counts: dict[str, int] = {}
    for (name, method, _status), count in ctx.live.totals.requests.items():
        if name == route:
            counts[method] = counts.get(method, 0) + count
    total = sum(counts.values())
    if total >= MIN_LIVE_REQUESTS:
        return share(counts.get("GET", 0) + counts.get("HEAD", 0), total), "the workers' counts by method"
    return (1.0 if set(methods) <= {"GET", "HEAD"} else 0.0), "the route's allowed methods"


def cache(ctx: Context) -> list[Finding]:
    found = []
    for name, route in ctx.routes.items():
        if route.protocol != "http" or route.cache is not None:
            continue
        total = ctx.route_total(name)
        if total.count < MIN_REQUESTS:
            continue
        reads, read_source = read_share(ctx, name, list(route.methods))
        success = share(total.count - total.errors_4xx - total.errors_5xx, total.count)
        p50 = total.quantile(0.5) or 0.0
        if reads < READ_SHARE or success < SUCCESS_SHARE or p50 < MIN_P50_S:
            continue
        figures = {"requests": total.count, "read_share": reads, "read_share_from": read_source,
                   "success_share": success, "p50_ms": ms(p50), "p95_ms": ms(total.quantile(0.95))}
        text = (f"route {name}: {total.count} requests over the last 7 days, {reads * 100:.0f}% of them GET or HEAD, "
                f"{success * 100:.0f}% successful, p50 {ms(p50)} ms: worth a response cache ({TTL_S} s to start with).")
        proof = evidence(figures, ctx.start, ctx.until, [f"requests route={name}", f"latency route={name}"],
                         ctx.dashboard(name))
        found.append(Finding(RULE, name, "info", text, proof,
                             patch={"cache": {"ttl_s": TTL_S}}, fields=("cache",)))
    return found
