"""One compiled plan per route table: everything a route does (guards, shaping, access, balancing, protocol
settings), built at once from the table and the data plane's shared state, so a request costs one dict lookup.

`build_plan` is a pure function of (table, AccessControl, Balancing, AiRouting, Discovered): it needs no event
loop. Discovered (protocols.discovery) is what the table's discovered backend names resolved to: when that
changes, the same table gets a new plan, whose runtimes balance over the new addresses. What truly needs
the loop (Redis connections, locks, JWKS fetches) is created lazily by the object that owns it, not here. State
that must outlive a table swap is looked up once while the plan is built: breakers, latency statistics and
in-flight counts live in Balancing's BackendBoard (per route id and backend URL), compiled JWT policies (their
token cache and JWKS) in AccessControl.

A route whose blocks do not compile (the control plane's validation normally prevents it) is planned
`broken` and refused with 503 `route_misconfigured`, never served unguarded or untransformed; the log says
why, once per table.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from protocols.abuse.config import AbusePolicy
from protocols.ai.plugin import ai_plugin
from protocols.apidocs.config import DocsPolicy
from protocols.balancing import Balancing, RouteRuntime
from protocols.block_errors import BlockError
from protocols.discovery import NOTHING_DISCOVERED, Discovered
from protocols.dns.doh import DOH_PATHS
from protocols.dns.resolvers import Resolver, resolvers_from_table
from protocols.ftp.config import FtpSettings, ftp_settings
from protocols.guards import DEFAULT_GUARDS, Guards
from protocols.health import HEALTH_PATHS
from protocols.llm.config import LlmPolicy, llm_policy
from protocols.llm.health import DEFAULT_RESILIENCE, Resilience
from protocols.plugins import PluginChain, PluginEntry, compile_chain, plugin_entries
from protocols.prefixes import PrefixMatch, match_prefix_route
from protocols.resilience import breaker_policy, retry_policy
from protocols.shaping import RouteShaping
from protocols.table import CompiledRoute, RouteTable
from protocols.tls.contexts import NO_CERTIFICATES, CertificateLookup, ServerContexts
from protocols.tls.policy import DEFAULT_TLS_POLICY, TlsPolicy, compile_tls_policy
from protocols.websocket.config import WebSocketPolicy, websocket_policy

if TYPE_CHECKING:
    from protocols.ai.routing import AiRouting, RouteAi
    from protocols.http.access import AccessControl, RouteAccess

log = logging.getLogger(__name__)

# The protocols whose routes pick backends through Balancing (dns routes name resolvers, not backends).
_BALANCED = frozenset({"http", "websocket", "ftp", "grpc"})
# The protocols whose requests the HTTP proxy checks client certificates for (in _prepare).
CLIENT_CERTIFICATE_PROTOCOLS = frozenset({"http", "grpc"})
# What TablePlan.paths maps a path answered before route matching to.
HEALTH = "health"
DOH = "dns"
_HEALTH_ONLY = dict.fromkeys(HEALTH_PATHS, HEALTH)


class RoutePlan:
    """What one route of one table does.

    `guards` is None when the route's (or the gateway-wide) guard blocks do not compile; `broken` is True when
    its guard or shaping blocks do not: HTTP requests (FTP ones too) are then refused, WebSocket handshakes only
    when `guards` is None (a tunnel's messages are not shaped). `shaping` is None for a route that neither
    transforms, caches nor compresses (the proxy's plain path); `access` None for a route with neither a JWT
    policy nor a rate limit. `runtime` is None for dns routes; `websocket` and `ftp` are set for routes of those
    protocols only; `ai` for http routes with an enabled `ai_policy` (protocols.ai.routing); `plugins` for http
    routes that run plugins (the gateway-wide `plugins` list with the route's own, protocols.plugins); `llm` for
    llm routes (their compiled `llm` block: targets, guard, budgets); `tls` is its `tls` block (HTTPS redirect,
    client certificates; protocols.tls.policy); `abuse` and `api_docs` are its traffic intelligence blocks on http
    routes (protocols.abuse, protocols.apidocs), None when absent or disabled.
    """

    __slots__ = ("route", "guards", "shaping", "broken", "touches_answers", "access", "runtime", "websocket",
                 "ftp", "ai", "plugins", "llm", "llm_resilience", "tls", "abuse", "api_docs")

    def __init__(self, route: CompiledRoute, guards: Guards | None, shaping: RouteShaping | None, broken: bool,
                 access: RouteAccess | None, runtime: RouteRuntime | None) -> None:
        self.route = route
        self.guards = guards
        self.shaping = shaping
        self.broken = broken
        # Whether answers get fields from the guards (CORS, security headers): otherwise `send` is used as is.
        self.touches_answers = guards is not None and (
            guards.cors is not None or bool(guards.security.plain) or bool(guards.security.secure))
        self.access = access
        self.runtime = runtime
        self.websocket: WebSocketPolicy | None = None
        self.ftp: FtpSettings | None = None
        self.ai: RouteAi | None = None
        self.plugins: PluginChain | None = None
        self.llm: LlmPolicy | None = None
        self.llm_resilience: Resilience = DEFAULT_RESILIENCE
        self.tls: TlsPolicy = DEFAULT_TLS_POLICY
        self.abuse: AbusePolicy | None = None
        self.api_docs: DocsPolicy | None = None


class TablePlan:
    """The plans of every route of one table (`routes`, by route id), and what the table needs as a whole.

    `unrouted` are the gateway-wide guards that 404 and 405 answers (and requests from denied addresses) go
    through over HTTP: the defaults when the gateway-wide blocks do not compile; `unrouted_guards` is None then,
    and a WebSocket handshake that matches no route is refused with 503. `ftp_routes` are the table's ftp
    routes in rank order (matched by path prefix, `ftp_route`); `resolvers` the dns routes' resolvers.

    `discovered` is what the table's discovered backends had resolved to when the plan was built.

    `paths` are the paths answered before any route is matched, and by what: HEALTH (/health, /ready, /live,
    always) and, when the table has dns routes, DOH for the DNS over HTTPS paths (protocols.dns.doh).

    `tls` is the TLS listener's certificate lookup for this table (protocols.tls.contexts): its certificates'
    contexts by SNI name, asking for client certificates when a route's `tls` block wants them.
    """

    __slots__ = ("table", "discovered", "routes", "unrouted", "unrouted_guards", "ftp_routes", "llm_routes",
                 "resolvers", "paths", "tls")

    def __init__(self, table: RouteTable, routes: dict[int, RoutePlan], unrouted_guards: Guards | None,
                 discovered: Discovered = NOTHING_DISCOVERED) -> None:
        self.table = table
        self.discovered = discovered
        self.routes = routes
        self.unrouted_guards = unrouted_guards
        self.unrouted = unrouted_guards if unrouted_guards is not None else DEFAULT_GUARDS
        self.ftp_routes: tuple[CompiledRoute, ...] = tuple(r for r in table.routes if r.protocol == "ftp")
        self.llm_routes: tuple[CompiledRoute, ...] = tuple(r for r in table.routes if r.protocol == "llm")
        self.resolvers: tuple[Resolver, ...] = resolvers_from_table(table)
        self.paths: dict[str, str] = _HEALTH_ONLY
        if any(route.protocol == "dns" for route in table.routes):
            self.paths = {**dict.fromkeys(DOH_PATHS, DOH), **_HEALTH_ONLY}
        self.tls: CertificateLookup = NO_CERTIFICATES

    def ftp_route(self, method: str, host: str, path: str) -> PrefixMatch | None:
        """The ftp route that serves this request (`host` and `path` as RouteTable.match takes them): the one
        whose path is the longest prefix of `path`, unless a more exact http or websocket route matches it.
        None when the request is not an FTP request."""
        return self._prefix_route(self.ftp_routes, "ftp", method, host, path)

    def llm_route(self, method: str, host: str, path: str) -> PrefixMatch | None:
        """The llm route whose front doors this request is for (`/llm/v1/chat/completions` of the route
        `/llm`), as `ftp_route` finds ftp routes; None when it is not for one."""
        return self._prefix_route(self.llm_routes, "llm", method, host, path)

    def _prefix_route(self, routes: tuple[CompiledRoute, ...], protocol: str, method: str, host: str,
                      path: str) -> PrefixMatch | None:
        found = match_prefix_route(routes, host, path)
        if found is None:
            return None
        exact = self.table.match(method, host, path).route
        if exact is not None and exact.protocol != protocol:
            return None
        return found


def build_plan(table: RouteTable, access: AccessControl, balancing: Balancing,
               ai: AiRouting | None = None, discovered: Discovered = NOTHING_DISCOVERED,
               certificates: ServerContexts | None = None) -> TablePlan:
    """The plan of `table`: every route compiled now, each discovered backend balanced as the addresses it
    resolved to in `discovered`. Balancing forgets the backends the table no longer has, AI routing the
    strategies of routes it no longer has (None: AI policies are not served); `certificates` (None: no TLS
    listener) builds the table's certificate lookup, reusing the contexts of unchanged certificates."""
    settings = table.settings
    try:
        unrouted: Guards | None = Guards.from_config(None, settings)
    except BlockError as exc:
        log.error("the gateway-wide guard blocks do not compile; answers without a route keep the defaults and "
                  "WebSocket handshakes without a route answer 503: %s", exc)
        unrouted = None
    runtimes = balancing.runtimes(table, _BALANCED, discovered.backends)
    access.start_table()
    if ai is not None:
        ai.start_table(table)
    plugins = _gateway_plugins(settings)
    made: dict[tuple[str, str], Any] = {}  # plugin objects, shared by the routes whose entries are the same
    routes = {route.id: _route_plan(route, settings, access, runtimes.get(route.id), ai, plugins, made)
              for route in table.routes}
    plan = TablePlan(table, routes, unrouted, discovered)
    if certificates is not None:
        # The CAs of every route that asks for client certificates; the proxy checks each route's own.
        bundles = sorted({p.tls.client_ca_pem for p in routes.values() if p.tls.wants_client_certificate})
        plan.tls = certificates.lookup(table.certificates, "\n".join(bundles))
    return plan


def _gateway_plugins(settings: Mapping[str, Any]) -> tuple[PluginEntry, ...] | BlockError:
    """The gateway-wide `plugins` entries, or why they cannot run (then every http route answers 503)."""
    try:
        return plugin_entries(settings.get("plugins"), check_configs=False)
    except BlockError as exc:
        log.error("the gateway-wide plugins do not compile; every http route answers 503: %s", exc)
        return BlockError(exc.prefixed("plugins"))


def _prefixed(block: str, compile_block: Callable[[Any], Any], value: Any) -> Any:
    """A block compiled by `compile_block`, its errors raised at paths that start with the block's name."""
    try:
        return compile_block(value)
    except BlockError as exc:
        raise BlockError(exc.prefixed(block)) from None


def _route_plan(route: CompiledRoute, settings: Mapping[str, Any], access: AccessControl,
                runtime: RouteRuntime | None, ai: AiRouting | None,
                plugins: tuple[PluginEntry, ...] | BlockError = (),
                made: dict[tuple[str, str], Any] | None = None) -> RoutePlan:
    policies = route.spec.policies or {}
    guards: Guards | None = None
    shaping: RouteShaping | None = None
    tls = DEFAULT_TLS_POLICY
    route_ai: RouteAi | None = None
    chain: PluginChain | None = None
    llm: LlmPolicy | None = None
    llm_resilience = DEFAULT_RESILIENCE
    abuse: AbusePolicy | None = None
    api_docs: DocsPolicy | None = None
    try:
        # First: a route whose client certificates cannot be checked is refused with no guards (WebSocket
        # handshakes too), never served to anyone.
        tls = compile_tls_policy(policies.get("tls"))
        if tls.wants_client_certificate and route.protocol not in CLIENT_CERTIFICATE_PROTOCOLS:
            # Checked by the HTTP proxy only: served elsewhere, the route would let anyone in.
            raise BlockError.at("tls.client_certificate",
                                "Client certificates are checked on http and grpc routes only.")
        guards = Guards.from_config(policies, settings)
        # Every protocol's: a websocket or dns route asked over plain HTTP is refused as misconfigured (503)
        # before it is refused for its protocol, as it always was.
        shaping = RouteShaping.from_policies(policies)
        if route.protocol == "grpc":
            shaping = None  # a call's messages and trailers pass through as they are
        if ai is not None and runtime is not None and route.protocol == "http":
            route_ai = ai.route(route, settings, runtime)
            if route_ai is not None and route.discovers:
                # Its strategies name backends by position, which addresses coming and going do not keep.
                raise BlockError.at("ai_policy", "AI routing cannot choose among discovered backends.")
        if route.protocol == "http":
            if isinstance(plugins, BlockError):
                raise plugins
            # AI routing is the route's built-in plugin, run in the chain's balance phase (protocols.ai.plugin).
            builtins = (ai_plugin(route_ai),) if route_ai is not None else ()
            chain = compile_chain(route.name, plugins, policies, {} if made is None else made, builtins=builtins)
            abuse = _prefixed("abuse", AbusePolicy.from_config, policies.get("abuse"))
            api_docs = _prefixed("api_docs", DocsPolicy.from_config, policies.get("api_docs"))
        elif route.protocol == "llm":
            llm = llm_policy(policies.get("llm"), route_name=route.name)
            llm_resilience = Resilience(breaker_policy(route.name, policies), retry_policy(route.name, policies),
                                        route.spec.load_balancing_strategy == "latency_aware")
    except BlockError as exc:
        log.error("route %r: its settings do not compile, it answers 503: %s", route.name, exc)
        broken = True
    else:
        broken = False
    plan = RoutePlan(route, guards, shaping, broken, access.compile(
        route, settings, personalized=abuse is not None and abuse.personalized_limits), runtime)
    plan.ai = route_ai
    plan.plugins = chain
    plan.llm = llm
    plan.llm_resilience = llm_resilience
    plan.tls = tls
    plan.abuse = abuse
    plan.api_docs = api_docs
    if route.protocol == "websocket":
        plan.websocket = websocket_policy(route.name, policies)
    elif route.protocol == "ftp":
        plan.ftp = ftp_settings(route.name, policies)
    return plan
