"""The load scenarios of `make bench`: one function per scenario, each returning a Scenario.

To add a run (a JWT + rate-limit route, a cached route, recording overhead...), write a function that takes the
bench context, builds its route document with `bench_route(...)` (or by hand, in importconfig's JSON format),
and returns a Scenario; then append it to SCENARIOS. Everything else (start, warm-up, measurement, memory,
clean stop, table and JSON) is the harness's job.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["direct", "nginx", "rusta"]


@dataclass(frozen=True, slots=True)
class Context:
    """What scenario functions may build on: where the shared upstream listens."""

    upstream_port: int


@dataclass(frozen=True, slots=True)
class Scenario:
    """One measured run.

    kind: "direct" hits the upstream itself, "nginx" the reference proxy, "rusta" `manage.py runproxy`
    loaded with `routes` (importconfig's JSON document). `primary` marks the run the targets are checked on.
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


SCENARIOS: tuple[Callable[[Context], Scenario], ...] = (
    upstream_direct,
    nginx_proxy,
    rusta_one_route,
    rusta_access_log,
)
