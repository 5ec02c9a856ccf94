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

Kind = Literal["direct", "nginx", "caddy", "rusta", "grpc_direct"]
Upstream = Literal["nginx", "slow"]
# What drives the load: wrk (HTTP/1.1, cleartext or TLS), h2load (HTTP/2) or bench/grpc_load.py (gRPC unary calls).
Tool = Literal["wrk", "h2load", "grpc"]
# The tables of the report: runs are compared (vs nginx, vs Caddy) within their group only.
Group = Literal["http1", "tls", "h2c", "h2", "grpc", "scaling"]
GROUP_TITLES: dict[str, str] = {
    "http1": "HTTP/1.1, cleartext",
    "tls": "HTTP/1.1 over TLS (wrk https, keep-alive)",
    "h2c": "HTTP/2 with prior knowledge, cleartext (h2load)",
    "h2": "HTTP/2 over TLS, ALPN (h2load)",
    "grpc": "gRPC unary calls (grpcio client, 100-byte messages)",
    "scaling": "Rusta workers, unpinned on every core (wrk and the upstream share them)",
}
# h2load's shape: 50 connections (as wrk's), 10 concurrent streams on each.
H2_CLIENTS = 50
H2_STREAMS = 10
# The gRPC load generator's calls in flight, on one channel (one HTTP/2 connection).
GRPC_CONCURRENCY = 50
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
    slow-backend helper (bench/slow_upstreams.py; the last one is slow), and the gRPC backend's port."""

    upstream_port: int
    slow_ports: tuple[int, int, int] = (0, 0, 0)
    grpc_port: int = 0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One measured run.

    kind: "direct" hits the upstream itself, "nginx" the reference proxy, "rusta" `manage.py runproxy`
    loaded with `routes` (importconfig's JSON document). `primary` marks the run the targets are checked on.
    `redis`: the harness starts a private redis-server and gives Rusta its REDIS_URL. `upstream`: "slow" needs
    the slow-backend helper running (the harness starts it once when any scenario does). `method` and `body`:
    every request of the run (wrk sends them through a Lua script). `connections`: wrk's -c for this run instead
    of the bench's --connections. `tool`: what drives the load; `tls`: the peer listens with the bench's
    certificate and the load goes over https; `workers`: runproxy's --workers; `pinned`: False runs the peer and
    the load generator on every core (the scaling runs); `group`: the report table the run belongs to.
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
    tool: Tool = "wrk"
    tls: bool = False
    workers: int = 1
    pinned: bool = True
    group: Group = "http1"


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


def caddy_proxy(ctx: Context) -> Scenario:
    """Caddy (Debian's package) as reverse proxy on one Go thread, the same route shape as nginx's."""
    return Scenario("caddy_proxy", "Caddy reverse_proxy, 1 thread", "caddy")


def nginx_tls(ctx: Context) -> Scenario:
    """nginx terminating TLS (the bench's ECDSA certificate), HTTP/1.1 keep-alive from wrk."""
    return Scenario("nginx_tls", "nginx, TLS", "nginx", tls=True, group="tls")


def caddy_tls(ctx: Context) -> Scenario:
    """Caddy terminating TLS with the same certificate."""
    return Scenario("caddy_tls", "Caddy, TLS", "caddy", tls=True, group="tls")


def rusta_tls(ctx: Context) -> Scenario:
    """Rusta's `runproxy --tls-port`, the certificate stored through /api/certificates/."""
    return Scenario("rusta_tls", "Rusta, TLS", "rusta", routes=bench_route(ctx.upstream_port), tls=True,
                    group="tls")


def nginx_h2c(ctx: Context) -> Scenario:
    """nginx speaking HTTP/2 with prior knowledge on a cleartext port."""
    return Scenario("nginx_h2c", "nginx, h2c", "nginx", tool="h2load", group="h2c")


def caddy_h2c(ctx: Context) -> Scenario:
    """Caddy with `protocols h1 h2 h2c`: HTTP/2 with prior knowledge on its cleartext port."""
    return Scenario("caddy_h2c", "Caddy, h2c", "caddy", tool="h2load", group="h2c")


def rusta_h2c(ctx: Context) -> Scenario:
    """Rusta's proxy port, HTTP/2 with prior knowledge (HTTP/1.1 stays on the same port)."""
    return Scenario("rusta_h2c", "Rusta, h2c", "rusta", routes=bench_route(ctx.upstream_port), tool="h2load",
                    group="h2c")


def nginx_h2(ctx: Context) -> Scenario:
    """nginx, HTTP/2 over TLS (ALPN)."""
    return Scenario("nginx_h2", "nginx, h2 over TLS", "nginx", tool="h2load", tls=True, group="h2")


def caddy_h2(ctx: Context) -> Scenario:
    """Caddy, HTTP/2 over TLS (ALPN)."""
    return Scenario("caddy_h2", "Caddy, h2 over TLS", "caddy", tool="h2load", tls=True, group="h2")


def rusta_h2(ctx: Context) -> Scenario:
    """Rusta's --tls-port, HTTP/2 by ALPN."""
    return Scenario("rusta_h2", "Rusta, h2 over TLS", "rusta", routes=bench_route(ctx.upstream_port),
                    tool="h2load", tls=True, group="h2")


def grpc_direct(ctx: Context) -> Scenario:
    """The gRPC ceiling: the load generator calling the grpcio backend itself."""
    return Scenario("grpc_direct", "grpcio backend direct", "grpc_direct", path="/bench.Echo/Call", tool="grpc",
                    group="grpc")


def rusta_grpc(ctx: Context) -> Scenario:
    """The same calls through a `protocol: "grpc"` route to that backend, over HTTP/2 with prior knowledge."""
    # Every method of the service, forwarded under its own path (a grpc route's methods are POST).
    router = {"name": "grpc", "protocol": "grpc", "external_path": "/bench.Echo/{method}",
              "backends": [{"host": "http://127.0.0.1", "port": ctx.grpc_port, "weight": 1}]}
    return Scenario("rusta_grpc", "Rusta, grpc route", "rusta", path="/bench.Echo/Call",
                    routes={"version": 1, "routers": [router]}, tool="grpc", group="grpc")


def rusta_one_worker_unpinned(ctx: Context) -> Scenario:
    """The scaling pair's base: `--workers 1`, nothing pinned."""
    return Scenario("rusta_workers_1", "Rusta, --workers 1, unpinned", "rusta", routes=bench_route(ctx.upstream_port),
                    pinned=False, group="scaling")


def rusta_two_workers_unpinned(ctx: Context) -> Scenario:
    """`--workers 2`, nothing pinned: the two workers, wrk and the upstream share the machine's cores."""
    return Scenario("rusta_workers_2", "Rusta, --workers 2, unpinned", "rusta", routes=bench_route(ctx.upstream_port),
                    workers=2, pinned=False, group="scaling")


SCENARIOS: tuple[Callable[[Context], Scenario], ...] = (
    upstream_direct,
    nginx_proxy,
    caddy_proxy,
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
    nginx_tls,
    caddy_tls,
    rusta_tls,
    nginx_h2c,
    caddy_h2c,
    rusta_h2c,
    nginx_h2,
    caddy_h2,
    rusta_h2,
    grpc_direct,
    rusta_grpc,
    rusta_one_worker_unpinned,
    rusta_two_workers_unpinned,
)
