"""Advice on circuit breakers, from the bursts of 5xx and gateway errors in each backend's five-minute series:
a route whose backends have bursts but no breaker, or a breaker that never opened through them (its thresholds
are too lax for the bursts), or one that keeps opening when there are no bursts (too tight)."""
from __future__ import annotations

from typing import Any

from metrics.advice.balancing import backend_labels
from metrics.advice.context import BURST_LOOKBACK, Context
from metrics.advice.findings import Finding, evidence, iso, share
from metrics.aggregates import Agg
from protocols.resilience import DEFAULT_BREAKER

RULE = "circuit_breaker"
BURST_MIN_REQUESTS = 20  # a five-minute point with fewer requests is no burst
BURST_RATIO = 0.5  # ...and a burst has this share of 5xx (the gateway's own errors are 5xx too)
MIN_BURSTS = 2  # "bursts": at least this many such points in the last day
ALWAYS_OPENS = 10  # opened this often since the gateway started...
QUIET_RATIO = 0.01  # ...with fewer 5xx than this over the day and no burst: the breaker is too tight
# The breaker advised against bursts: open when half the requests of 30 s failed, once 10 were made.
BURST_BREAKER = {"failure_ratio": 0.5, "window_s": 30, "min_requests": 10}
SHOWN_BURSTS = 10


def circuit_breaker(ctx: Context) -> list[Finding]:
    found = []
    for name, route in ctx.routes.items():
        if route.protocol not in ("http", "websocket", "grpc"):
            continue
        block: dict[str, Any] = dict(route.circuit_breaker or {})
        seen_live = any(key[0] == name for key in ctx.live.totals.requests)
        for label in backend_labels(route):
            finding = _judge(ctx, name, label, block, seen_live)
            if finding is not None:
                found.append(finding)
                break  # one draft per route: the block is the route's, for all its backends
    return found


def _judge(ctx: Context, route: str, label: str, block: dict[str, Any], seen_live: bool) -> Finding | None:
    points = sorted(ctx.five_minutes.get((route, label), {}).items())
    day = Agg()
    bursts = []
    for start, agg in points:
        day.merge(agg)
        if agg.count >= BURST_MIN_REQUESTS and agg.errors_5xx / agg.count >= BURST_RATIO:
            bursts.append({"start": iso(start), "requests": agg.count, "errors_5xx": agg.errors_5xx,
                           "gateway_errors": agg.errors_gateway})
    opens = ctx.live.totals.breaker_opens.get((route, label), 0)
    enabled = block.get("enabled", DEFAULT_BREAKER.enabled)
    threshold = block.get("failure_threshold") or DEFAULT_BREAKER.failure_threshold
    figures = {"backend": label, "bursts": bursts[-SHOWN_BURSTS:], "burst_count": len(bursts),
               "requests_last_day": day.count, "errors_5xx_last_day": day.errors_5xx,
               "error_ratio_last_day": share(day.errors_5xx, day.count), "breaker_enabled": enabled,
               "failure_threshold": threshold, "failure_ratio": block.get("failure_ratio"),
               "breaker_opens_since_start": opens}
    proof = evidence(figures, ctx.until - BURST_LOOKBACK, ctx.until,
                     [f"errors route={route} backend={label} (5 min)"], ctx.dashboard(route))
    if len(bursts) >= MIN_BURSTS and not enabled:
        text = (f"route {route}: backend {label} had {len(bursts)} bursts of 5xx in the last 24 h (over half of "
                f"its requests failing for five minutes) and the route has no circuit breaker: enable one that "
                "opens when half the requests of 30 s fail.")
        return Finding(RULE, route, "warning", text, proof,
                       patch={"circuit_breaker": {**block, "enabled": True, **BURST_BREAKER}},
                       fields=("circuit_breaker",))
    if len(bursts) >= MIN_BURSTS and seen_live and opens == 0:
        laxer = {**block, **BURST_BREAKER}
        if laxer == block:
            laxer = {**block, "failure_threshold": max(1, threshold // 2)}
        text = (f"route {route}: backend {label} had {len(bursts)} bursts of 5xx in the last 24 h and its circuit "
                f"breaker never opened (failure_threshold {threshold} consecutive failures): also open it on a "
                "failure ratio, half of the requests of 30 s.")
        return Finding(RULE, route, "warning", text, proof, patch={"circuit_breaker": laxer},
                       fields=("circuit_breaker",))
    if enabled and not bursts and opens >= ALWAYS_OPENS and day.count and day.errors_5xx / day.count < QUIET_RATIO:
        tighter = {**block, "failure_threshold": max(10, 2 * threshold)}
        if block.get("failure_ratio") is not None:
            tighter["failure_ratio"] = min(1.0, round(2 * float(block["failure_ratio"]), 2))
        text = (f"route {route}: the circuit breaker of backend {label} opened {opens} times since the gateway "
                f"started while its 5xx stayed at {share(day.errors_5xx, day.count) * 100:.2f}% over the last "
                f"24 h with no burst: it opens on noise; raise failure_threshold to {tighter['failure_threshold']}.")
        return Finding(RULE, route, "info", text, proof, patch={"circuit_breaker": tighter},
                       fields=("circuit_breaker",))
    return None
