"""The immutable compiled route table and its matcher; the live table is swapped atomically as a whole."""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from protocols.patterns import Segment, parse_pattern, parse_template
from protocols.tls import CertificateSpec

# GET implies HEAD (RFC 9110 9.3.2), as Kong and nginx do.
_IMPLIED_METHODS = {"GET": ("HEAD",)}


@dataclass(frozen=True, slots=True)
class DiscoverySpec:
    """How a backend's addresses are found (protocols.discovery): `kind` "a" resolves its host to every A/AAAA
    address at its port, "srv" reads its host as an SRV name whose targets, ports and weights become the
    backends; again every `interval_s` seconds, from `resolver` (address, port) or, None, the system's."""

    kind: str
    interval_s: float = 5.0
    resolver: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One upstream server of a route, as plain data; with `discovery`, a name that stands for the addresses the
    data plane resolves it to (protocols.discovery), each balanced as a backend of its own."""

    id: int
    scheme: str
    host: str
    port: int
    weight: int = 1
    health_check_path: str | None = None
    description: str = field(default="", compare=False)  # what it is for (AI routing shows it to the model)
    discovery: DiscoverySpec | None = None
    # The name TLS sends (SNI) and verifies, and the default Host, when it is not `host`: the DNS name a
    # discovered https address was found under (protocols.discovery). "": `host`.
    server_name: str = ""
    # The backend's `tls` options (https/wss backends): the CA bundle (PEM) that signs its certificate instead of
    # the system's, the name to send (SNI) and verify instead of `server_name`/`host`, and whether to verify at all.
    tls_ca: str = field(default="", compare=False)
    tls_server_name: str = ""
    tls_verify: bool = True

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def is_tls(self) -> bool:
        return self.scheme in ("https", "wss", "ftps")


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route as plain data: what routes/snapshot.py hands the data plane, never an ORM object."""

    id: int
    name: str
    external_path: str
    methods: tuple[str, ...]
    backends: tuple[BackendSpec, ...]
    protocol: str = "http"
    internal_path: str = ""
    match_host: str = ""
    load_balancing_strategy: str = "round_robin"
    auth_required: bool = False
    auth: str = "none"  # none, key, jwt or either (protocols.auth.consumers); none + auth_required: jwt
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 0.0  # 0: no limit on the whole exchange
    preserve_host: bool = False
    priority: int = 0
    order: int = 0
    policies: dict[str, Any] = field(default_factory=dict)


class CompiledRoute:
    """A route ready for matching and forwarding: everything derivable is computed once, here."""

    __slots__ = (
        "spec", "id", "name", "methods", "allow", "segments", "template", "param_names", "is_static",
        "host_exact", "host_suffix", "rank", "backends", "protocol", "discovers",
    )

    def __init__(self, spec: RouteSpec) -> None:
        self.spec = spec
        self.id = spec.id
        self.name = spec.name
        self.protocol = spec.protocol
        methods = {m.upper() for m in spec.methods}
        for method in list(methods):
            methods.update(_IMPLIED_METHODS.get(method, ()))
        self.methods = frozenset(methods)
        self.allow = ", ".join(sorted(self.methods))
        self.segments: tuple[Segment, ...] = parse_pattern(spec.external_path)
        self.param_names = tuple(s.text for s in self.segments if s.is_param)
        self.template = parse_template(spec.internal_path, frozenset(self.param_names))
        self.is_static = not self.param_names
        host = spec.match_host.strip().lower()
        self.host_suffix = host[1:] if host.startswith("*.") else ""
        self.host_exact = "" if self.host_suffix else host
        self.backends = spec.backends
        self.discovers = any(backend.discovery is not None for backend in spec.backends)
        self.rank = 0  # set by RouteTable: lower wins

    def specificity(self) -> tuple[int, int, int, int, int, int]:
        """Sort key: static first, then host-bound, more static segments, longer, higher priority, older."""
        static_count = sum(1 for s in self.segments if not s.is_param)
        return (
            0 if self.is_static else 1,
            0 if (self.host_exact or self.host_suffix) else 1,
            -static_count,
            -len(self.spec.external_path),
            -self.spec.priority,
            self.spec.order,
        )

    def accepts_host(self, host: str) -> bool:
        if self.host_exact:
            return host == self.host_exact
        if self.host_suffix:
            return host.endswith(self.host_suffix)
        return True

    def upstream_path(self, params: dict[str, str], request_path: str) -> str:
        """The path sent upstream: the internal template with parameters filled in, or the request path."""
        if not self.template:
            return request_path
        return "".join(params[text] if is_param else text for is_param, text in self.template)


class _Node:
    __slots__ = ("static", "param", "routes")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.routes: list[CompiledRoute] = []


@dataclass(frozen=True, slots=True)
class Match:
    """The result of matching: a route with its parameters, or the methods allowed (405), or nothing (404)."""

    route: CompiledRoute | None
    params: dict[str, str]
    allow: str | None = None


NO_MATCH = Match(None, {})


class RouteTable:
    """An immutable set of compiled routes. Build a new one for every configuration change.

    `settings` holds the gateway-wide policy blocks by name (`jwt`, `rate_limit`...: GatewaySettings' JSON
    fields), which apply to every route that has no block of its own, and under `consumers` the table's
    ConsumerDirectory (protocols.auth.consumers: API keys and JWT subjects); treat it as read-only.
    `certificates` are the TLS certificates the proxy listener serves (protocols.tls), picked by SNI.
    """

    def __init__(self, specs: list[RouteSpec] | tuple[RouteSpec, ...], version: int = 0,
                 settings: Mapping[str, Any] | None = None,
                 certificates: tuple[CertificateSpec, ...] = ()) -> None:
        self.version = version
        self.settings: Mapping[str, Any] = MappingProxyType(dict(settings or {}))
        self.certificates = certificates
        self.built_at = time.time()
        compiled = [CompiledRoute(spec) for spec in specs]
        compiled.sort(key=CompiledRoute.specificity)
        for rank, route in enumerate(compiled):
            route.rank = rank
        self.routes: tuple[CompiledRoute, ...] = tuple(compiled)
        self.by_id = {route.id: route for route in compiled}
        self._static: dict[str, list[CompiledRoute]] = {}
        self._root = _Node()
        for route in compiled:
            if route.is_static:
                key = "/" + "/".join(s.text for s in route.segments)
                self._static.setdefault(key, []).append(route)
            else:
                node = self._root
                for segment in route.segments:
                    if segment.is_param:
                        if node.param is None:
                            node.param = _Node()
                        node = node.param
                    else:
                        node = node.static.setdefault(segment.text, _Node())
                node.routes.append(route)

    def __len__(self) -> int:
        return len(self.routes)

    def match(self, method: str, host: str, path: str) -> Match:
        """Find the route for a request. `host` is lower-case without port; `path` is the raw path."""
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        best: CompiledRoute | None = None
        best_params: dict[str, str] = {}
        allowed: set[str] | None = None
        for route in self._static.get(path, ()):
            if not route.accepts_host(host):
                continue
            if method in route.methods:
                return Match(route, {})
            allowed = (allowed or set()) | route.methods
        segments = path[1:].split("/") if path != "/" else []
        found: list[tuple[_Node, tuple[str, ...]]] = []
        _walk(self._root, segments, 0, len(segments), [], found)
        for node, values in found:
            for route in node.routes:
                if best is not None and route.rank >= best.rank:
                    break
                if not route.accepts_host(host):
                    continue
                if method in route.methods:
                    best = route
                    best_params = dict(zip(route.param_names, values, strict=True))
                    break
                allowed = (allowed or set()) | route.methods
        if best is not None:
            return Match(best, best_params)
        if allowed:
            return Match(None, {}, ", ".join(sorted(allowed)))
        return NO_MATCH


def _walk(node: _Node, segments: list[str], index: int, count: int, captured: list[str],
          found: list[tuple[_Node, tuple[str, ...]]]) -> None:
    if index == count:
        if node.routes:
            found.append((node, tuple(captured)))
        return
    segment = segments[index]
    child = node.static.get(segment)
    if child is not None:
        _walk(child, segments, index + 1, count, captured, found)
    if node.param is not None and segment:
        captured.append(segment)
        _walk(node.param, segments, index + 1, count, captured, found)
        captured.pop()


EMPTY_TABLE = RouteTable([], version=0)


class LiveTable:
    """The table this process serves from. Swapping is one reference assignment, so readers never lock.

    `health` is the active health overlay: backend id -> healthy, as the control plane last published it
    (probe results with operator overrides applied). A backend missing from it counts as healthy.
    `background_at` is when the background work (health checks, rollups) last reported, as the database said at
    the last poll (0: never); `watching_since` is when this process's watcher first polled (0: not yet).
    """

    __slots__ = ("table", "loaded", "source_ok_at", "health", "health_version", "background_at", "watching_since")

    def __init__(self) -> None:
        self.table: RouteTable = EMPTY_TABLE
        self.loaded = False
        self.source_ok_at = 0.0
        self.health: dict[int, bool] = {}
        self.health_version = -1
        self.background_at = 0.0
        self.watching_since = 0.0

    def install(self, table: RouteTable) -> None:
        self.table = table
        self.loaded = True

    def install_health(self, health: dict[int, bool], version: int) -> None:
        self.health = health
        self.health_version = version


live = LiveTable()
