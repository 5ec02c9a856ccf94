"""Shaping: a route's transformations, response cache and compression, put around the proxy's upstream exchange.

Where the proxy uses it (protocols.http.proxy; RouteShaping compiled per table in protocols.plan, None for
routes without any of the four blocks, which take the plain path): request header rules before X-Forwarded-*,
Via and X-Request-ID are added; path rules after {param} substitution; query rules; a JSON request body read
within the cap (`read_capped`, `edit_body`) and streamed untouched when larger; then, after JWT and rate limits,
the upstream exchange answers through a ResponseShaper, inside `through_cache` when the route caches. The
process's ResponseCache is Redis-backed when REDIS_URL is set (shared by every gateway process), else in memory;
control-plane purges reach it through routes.cache_purges.PurgeFollower in the table watcher.

ResponseShaper order on the way back: stale copy for a 5xx (when the lookup found one) -> status mapping (on the
backend's head) -> response header rules -> JSON body rules (head held until the body is read, within the cap)
-> X-Cache -> the cache fill's tee -> compression -> send. through_cache answers hits itself (X-Cache: HIT,
Age, Via, X-Request-ID), coalesces misses per process, and turns a 5xx GatewayError from `forward` into the
stale copy when there is one.
"""
from __future__ import annotations

from protocols.shaping.flow import through_cache
from protocols.shaping.request import edit_body, read_capped
from protocols.shaping.respond import ResponseShaper
from protocols.shaping.route import BLOCKS, RouteShaping

__all__ = ["BLOCKS", "ResponseShaper", "RouteShaping", "edit_body", "read_capped", "through_cache"]
