"""The load scenarios of `make bench`: one function per scenario, each returning a Scenario.

To add a run (a JWT + rate-limit route, a cached route, recording overhead...), write a function that takes the
bench context, builds its route document with `bench_route(...)` (or by hand, in importconfig's JSON format),
and returns a Scenario; then append it to SCENARIOS. Everything else (start, warm-up, measurement, memory,
clean stop, table and JSON) is the harness's job.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt

Kind = Literal["direct", "nginx", "rusta"]
Upstream = Literal["nginx", "slow"]
# The slow-backend scenarios: three upstreams, the last answering SLOW_DELAY_MS late (about 10x the others,
# which answer in well under 2 ms under the bench's load).
SLOW_DELAY_MS = 20
JWT_SECRET = "bench-only-secret-of-more-than-thirty-two-bytes"
# The LLM scenarios' request: a small non-streamed chat.completions call, the same to the stub and through Rusta.
LLM_REQUEST = json.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "Say pong."}],
                          "max_tokens": 16}, separators=(",", ":"))
LLM_HEADERS = ("Content-Type: application/json",)
# Issue 16 bounds the latency an LLM route adds, so the pair runs with one connection: a request never waits behind
# another, and the p99 difference is the gateway's own time (with 50 connections on one saturated worker the p99 is
# mostly queueing, 50 / requests per second, whatever each request costs).
LLM_CONNECTIONS = 1


@dataclass(frozen=True, slots=True)
class Context:
    """What scenario functions may build on: where the shared upstream listens, and the three ports of the
    slow-backend helper (bench/slow_upstreams.py; the last one is slow)."""

    upstream_port: int
    slow_ports: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One measured run.

    kind: "direct" hits the upstream itself, "nginx" the reference proxy, "rusta" `manage.py runproxy`
    loaded with `routes` (importconfig's JSON document). `primary` marks the run the targets are checked on.
    `redis`: the harness starts a private redis-server and gives Rusta its REDIS_URL. `upstream`: "slow" needs
    the slow-backend helper running (the harness starts it once when any scenario does). `method` and `body`:
    every request of the run (wrk sends them through a Lua script). `connections`: wrk's -c for this run instead
    of the bench's --connections.
    """

    name: str
    label: str
    kind: Kind
    path: str = "/bench"
    routes: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    access_log: bool = False
    headers: tuple[str, ...] = ()
    primary: bool = False
    redis: bool = False
    upstream: Upstream = "nginx"
    method: str = "GET"
    body: str | None = None
    connections: int | None = None


def bench_route(upstream_port: int, *, name: str = "bench", external_path: str = "/bench",
                **extra: Any) -> dict[str, Any]:
    """An importconfig document with one GET route to the bench upstream; `extra` adds router fields."""
    router: dict[str, Any] = {
        "name": name,
        "external_path": external_path,
        "internal_path": "/",
        "methods": ["GET"],
        "backends": [{"host": "http://127.0.0.1", "port": upstream_port, "weight": 1}],
    }
    router.update(extra)
    return {"version": 1, "routers": [router]}


def upstream_direct(ctx: Context) -> Scenario:
    """The ceiling: wrk straight at the upstream, no proxy."""
    return Scenario("upstream_direct", "upstream direct (ceiling)", "direct", path="/bench")


def nginx_proxy(ctx: Context) -> Scenario:
    """The reference: nginx proxy_pass, 1 worker, upstream keep-alive."""
    return Scenario("nginx_proxy", "nginx proxy_pass, 1 worker", "nginx")


def rusta_one_route(ctx: Context) -> Scenario:
    """Rusta, 1 worker, one route, access log off: the run the targets apply to."""
    return Scenario("rusta", "Rusta, 1 worker, 1 route", "rusta", routes=bench_route(ctx.upstream_port),
                    primary=True)


def rusta_access_log(ctx: Context) -> Scenario:
    """The same with the JSON access log on (written to /dev/null): what logging costs."""
    return Scenario("rusta_access_log", "Rusta, access log on", "rusta", routes=bench_route(ctx.upstream_port),
                    access_log=True)


def rusta_without_recording(ctx: Context) -> Scenario:
    """The primary run with the metrics recorder swapped for one that does nothing: what recording costs."""
    return Scenario("rusta_no_recording", "Rusta without recording", "rusta",
                    routes=bench_route(ctx.upstream_port), env={"RUSTA_METRICS_RECORD": "false"})


def _jwt_limited_route(ctx: Context, store: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The bench route with JWT and a rate limit high enough never to reject, and wrk's Authorization header.
    A token bucket: constant memory per key (a sliding log this high would keep a timestamp per request)."""
    document = bench_route(ctx.upstream_port, auth_required=True,
                           rate_limit={"algorithm": "token_bucket", "limit": 10_000_000, "window_s": 60,
                                       "store": store})
    document["jwt"] = {"secret": JWT_SECRET}
    token = jwt.encode({"sub": "bench", "exp": int(time.time()) + 86400}, JWT_SECRET, algorithm="HS256")
    return document, (f"Authorization: Bearer {token}",)


def rusta_jwt_rate_limit(ctx: Context) -> Scenario:
    """JWT verification and a Redis-shared rate limit (high enough never to reject) on the route."""
    document, headers = _jwt_limited_route(ctx, "redis")
    return Scenario("rusta_jwt_ratelimit", "Rusta, JWT + Redis rate limit", "rusta", routes=document,
                    headers=headers, redis=True)


def rusta_jwt_local_rate_limit(ctx: Context) -> Scenario:
    """The same with the rate limit counted in the process: what the Redis round trip adds."""
    document, headers = _jwt_limited_route(ctx, "local")
    return Scenario("rusta_jwt_local_limit", "Rusta, JWT + local rate limit", "rusta", routes=document,
                    headers=headers)


def rusta_cached(ctx: Context) -> Scenario:
    """The bench route with a response cache (in the process's memory): every request after the first is a hit,
    answered without the upstream; compare with the primary (uncached) run."""
    return Scenario("rusta_cached", "Rusta, cached route (hits)", "rusta",
                    routes=bench_route(ctx.upstream_port, cache={"ttl_s": 600}))


def rusta_plugin(ctx: Context) -> Scenario:
    """The bench route running the example plugin package (examples/rusta-example-plugin, installed with the test
    requirements): its upstream phase sets a header on every request; compare with the primary run."""
    plugins = [{"name": "example", "config": {"header_value": "bench"}}]
    return Scenario("rusta_plugin", "Rusta, example plugin", "rusta", routes=bench_route(ctx.upstream_port,
                                                                                          plugins=plugins))


def _slow_route(ctx: Context, strategy: str) -> dict[str, Any]:
    document = bench_route(ctx.upstream_port, load_balancing_strategy=strategy)
    document["routers"][0]["backends"] = [{"host": "http://127.0.0.1", "port": port, "weight": 1}
                                          for port in ctx.slow_ports]
    return document


def rusta_slow_round_robin(ctx: Context) -> Scenario:
    """Three backends, one answering SLOW_DELAY_MS late, round robin: a third of the requests wait for it."""
    return Scenario("slow_round_robin", "1 slow of 3, round_robin", "rusta", routes=_slow_route(ctx, "round_robin"),
                    upstream="slow")


def rusta_slow_latency_aware(ctx: Context) -> Scenario:
    """The same three backends, latency_aware: the slow one should get few requests."""
    return Scenario("slow_latency_aware", "1 slow of 3, latency_aware", "rusta",
                    routes=_slow_route(ctx, "latency_aware"), upstream="slow")


def llm_direct(ctx: Context) -> Scenario:
    """The LLM ceiling: wrk POSTing a chat request straight at the stub provider (a fixed chat.completion from
    the bench upstream, bench/nginx/upstream.conf.template)."""
    return Scenario("llm_direct", "llm stub direct, 1 conn", "direct", path="/v1/chat/completions",
                    headers=LLM_HEADERS, method="POST", body=LLM_REQUEST, connections=LLM_CONNECTIONS)


def rusta_llm(ctx: Context) -> Scenario:
    """The same request through an llm route with one openai_compatible target at the stub, no auth, guard or
    limits: what the LLM gateway adds (parsing, the target's exchange, reading the usage, recording)."""
    router = {"name": "llm", "protocol": "llm", "external_path": "/llm",
              "llm": {"targets": [{"provider": "openai_compatible", "model": "bench-model",
                                   "base_url": f"http://127.0.0.1:{ctx.upstream_port}"}]}}
    return Scenario("rusta_llm", "Rusta, llm route, 1 conn", "rusta", path="/llm/v1/chat/completions",
                    routes={"version": 1, "routers": [router]}, headers=LLM_HEADERS, method="POST",
                    body=LLM_REQUEST, connections=LLM_CONNECTIONS)


SCENARIOS: tuple[Callable[[Context], Scenario], ...] = (
    upstream_direct,
    nginx_proxy,
    rusta_one_route,
    rusta_access_log,
    rusta_without_recording,
    rusta_jwt_rate_limit,
    rusta_jwt_local_rate_limit,
    rusta_cached,
    rusta_plugin,
    rusta_slow_round_robin,
    rusta_slow_latency_aware,
    llm_direct,
    rusta_llm,
)
