"""Advice on rate limits, from per-client request rates: the p99 of the clients' rates times a headroom is a limit
that normal use never meets, for routes without a limit of their own or with one far from use (or below it)."""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from metrics.advice.context import CLIENT_LOOKBACK, Context
from metrics.advice.findings import Finding, evidence, nice_ceiling
from protocols.block_errors import BlockError
from protocols.limits.config import RateLimitPolicy

RULE = "rate_limit"
MIN_CLIENTS = 3
MIN_WINDOWS = 30  # client-windows with requests
HEADROOM = 3.0  # the limit: this many times the p99 of the per-client rates
WINDOW_S = 60  # the advised limit's window
FAR_ABOVE = 10.0  # an existing limit this many times the advised one is far from use
# How the client windows name a client, and the rate_limit scope that keys the same way.
SCOPES = {"consumer": "consumer", "sub": "user", "key": "api_key", "ip": "ip"}


def rate_limit(ctx: Context) -> list[Finding]:
    found = []
    for name, route in ctx.routes.items():
        if route.protocol != "http":
            continue
        clients, source = ctx.client_rates.get(name), "client windows"
        if not clients:
            clients, source = ctx.consumer_rates.get(name), "consumer points"
        if not clients:
            continue
        finding = _judge(ctx, name, route.rate_limit, clients, source)
        if finding is not None:
            found.append(finding)
    return found


def _configured_rate(block: Any) -> float | None:
    """The route's own limit in requests per second per key (None: none of its own, or switched off)."""
    if not isinstance(block, dict) or block.get("enabled") is False:
        return None
    try:
        return RateLimitPolicy.from_config(block).rate
    except BlockError:
        return None


def _judge(ctx: Context, route: str, block: Any, clients: dict[str, list[float]], source: str) -> Finding | None:
    rates = np.array([rate for values in clients.values() for rate in values])
    if len(clients) < MIN_CLIENTS or len(rates) < MIN_WINDOWS:
        return None
    p50, p95, p99 = (float(np.percentile(rates, q)) for q in (50, 95, 99))
    advised = nice_ceiling(p99 * HEADROOM * WINDOW_S)
    kinds = Counter(client.split(":", 1)[0] for client in clients)
    scope = SCOPES.get(kinds.most_common(1)[0][0], "ip")
    configured = _configured_rate(block)
    figures: dict[str, Any] = {
        "source": source, "clients": len(clients), "client_windows": int(len(rates)),
        "rate_p50_per_s": round(p50, 3), "rate_p95_per_s": round(p95, 3), "rate_p99_per_s": round(p99, 3),
        "rate_max_per_s": round(float(rates.max()), 3), "headroom": HEADROOM,
        "advised_limit": advised, "advised_window_s": WINDOW_S,
        "configured_per_s": None if configured is None else round(configured, 3),
    }
    proof = evidence(figures, ctx.until - CLIENT_LOOKBACK, ctx.until, [f"{source} route={route}"],
                     ctx.dashboard(route))
    advised_block = {"limit": advised, "window_s": WINDOW_S, "scope": [scope]}
    if configured is None:
        if isinstance(block, dict) and block.get("enabled") is False:
            return None  # switched off on purpose
        text = (f"route {route}: no rate limit of its own; its {len(clients)} clients' p99 rate over the last 3 h is "
                f"{p99:.2f} req/s: a limit of {advised} per {WINDOW_S} s per {scope} ({HEADROOM:g}x that) stops a "
                "runaway client without touching normal use.")
        return Finding(RULE, route, "info", text, proof, patch={"rate_limit": advised_block}, fields=("rate_limit",))
    kept = {key: value for key, value in block.items()
            if key not in ("limit", "window_s", "requests_per_window", "window_duration", "requests_per_second",
                           "requests_per_minute", "requests_per_hour")}
    if configured < p99:
        text = (f"route {route}: its rate limit ({configured:.2f} req/s per key) is below its clients' p99 rate of "
                f"{p99:.2f} req/s over the last 3 h: normal use is refused; raise it to {advised} per {WINDOW_S} s.")
        return Finding(RULE, route, "warning", text, proof,
                       patch={"rate_limit": {**kept, "limit": advised, "window_s": WINDOW_S}}, fields=("rate_limit",))
    if configured >= FAR_ABOVE * advised / WINDOW_S:
        times = configured * WINDOW_S / advised
        text = (f"route {route}: its rate limit ({configured:.2f} req/s per key) is {times:.0f}x the {advised} per "
                f"{WINDOW_S} s its clients' p99 rate ({p99:.2f} req/s) calls for: it would not stop a runaway client.")
        return Finding(RULE, route, "info", text, proof,
                       patch={"rate_limit": {**kept, "limit": advised, "window_s": WINDOW_S}}, fields=("rate_limit",))
    return None
