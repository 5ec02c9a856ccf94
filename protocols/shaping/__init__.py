"""Shaping: a route's transformations, response cache and compression, put around the proxy's upstream exchange.

tests/support/shaped.py wires all of it into a ProxyApp subclass, at the places ProxyApp itself should make these
calls; this is the same, step by step (`shaping` is the route's RouteShaping, None for routes without any of the
four blocks, which then take today's path untouched):

    # protocols/table.py, CompiledRoute.__init__ (a `shaping` slot), so it is built with the table:
    self.shaping = RouteShaping.from_policies(spec.policies)   # PolicyError (a ValueError) names each problem
    # routes/snapshot.build_table: catch PolicyError next to PatternError, so a bad row is left out and logged.

    # ProxyApp.__init__ (once per process):
    self.cache = ResponseCache(RedisCacheStore(REDIS_URL) if REDIS_URL else MemoryStore(64 << 20),
                               recorder=metrics.recorder.recorder)     # cache_result(route, hit) is called here
    # ... and a PurgeFollower(self.cache) in the table watcher (routes.cache_purges).

    # ProxyApp._prepare, request side:
    head.forward = shaping.request.apply_headers(head.forward)         # before X-Forwarded-*, Via, X-Request-ID
    target = shaping.request.apply_path(route.upstream_path(params, clean_path))   # after {param} substitution
    query = shaping.request.apply_query(scope["query_string"])

    # _read_body, when shaping.request.body_applies(head.forward, head.content_length):
    data, complete = await read_capped(receive, first, more_body, shaping.request.max_body_bytes)
    complete: attempt.body = edit_body(shaping.request, data, True); attempt.content_length = len(attempt.body)
    else:     attempt.body = streamed_body(receive, data, exchange); attempt.retries = 0   (sent untouched)

    # __call__, after auth and rate limiting, instead of calling forward(...) directly:
    shaper = ResponseShaper(send, shaping, method, clean_path, scope["headers"], exchange.request_id)
    shaper.extra_headers = exchange.response_headers        # RateLimit-* on answers from the cache too
    go = lambda: forward(self.client, self.state, attempt, receive, shaper, exchange)   # or the total-timeout one
    if shaping.cache: await through_cache(self.cache, shaping.cache, shaper, route.name, method, host, clean_path,
                                          scope["query_string"], scope["headers"], go)
    else: await go()
    exchange.status, exchange.bytes_out = shaper.status, shaper.bytes_out      # what the client really got
    # except GatewayError: if not shaper.started: exchange.answered = False   (a held JSON head never went out)

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
from protocols.transform.errors import PolicyError

__all__ = ["BLOCKS", "PolicyError", "ResponseShaper", "RouteShaping", "edit_body", "read_capped", "through_cache"]
