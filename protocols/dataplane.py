"""The data plane's root: what every listener of a process shares (the live table and its plan, the upstream
clients (HTTP/1.1, and HTTP/2 for gRPC), balancing, admission, the response cache, the FTP gateway, the DNS
forwarder and backend discovery), built once."""
from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from protocols.abuse.counters import AbuseCounters
from protocols.abuse.sanctions import Sanctions
from protocols.ai.routing import AiRouting
from protocols.balancing import Balancing
from protocols.cache import MemoryStore, RedisCacheStore, ResponseCache
from protocols.discovery import BackendDiscovery, Lookup
from protocols.dns import DnsForwarder
from protocols.ftp import FtpGateway, FtpOptions
from protocols.health import DEFAULT_LIMITS, HealthLimits
from protocols.http.access import AccessControl
from protocols.http.accesslog import AccessLog
from protocols.http.headers import Network, RequestIds, TrustedPeers
from protocols.llm.answers import MemoryAnswers, RedisAnswers
from protocols.llm.budgets import Budgets, LocalBudgetStore, RedisBudgetStore
from protocols.llm.gateway import LlmGateway
from protocols.plan import TablePlan, build_plan
from protocols.recorder import Recorder, recorder
from protocols.table import EMPTY_TABLE, LiveTable, RouteTable, live
from protocols.tls.contexts import ServerContexts
from protocols.tracing import SpanSink
from protocols.upstream import DEFAULT_IDLE_TIMEOUT, HOP_BY_HOP, UpstreamClient
from protocols.upstream.http2_client import Http2Client

# The backend's X-Request-ID is replaced by ours so the client sees exactly one; like nginx, the server's own
# Date and Server go out instead of the backend's (two Date fields would be invalid).
_REPLACED_RESPONSE_HEADERS = frozenset({b"x-request-id", b"date", b"server"})


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """Everything the data plane needs from configuration, built once at start-up (it never reads settings)."""

    trusted_proxies: tuple[Network, ...] = ()
    access_log: bool = True
    pool_size: int = 256
    state: LiveTable = field(default=live)
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    ssl_context: ssl.SSLContext | None = None  # for https (and ftps, wss) backends; None: the system's trust
    clock: Callable[[], float] = time.monotonic  # breakers, budgets and latency statistics read this one
    recorder: Recorder = field(default=recorder)  # protocols.recorder's; a NullRecorder turns recording off
    redis_url: str = ""  # shared rate-limit counters (routes whose rate_limit says store: redis)
    spans: SpanSink | None = None  # OpenTelemetry export: one span per proxied request; None: off
    cache_bytes: int = 64 << 20  # the response cache in this process's memory (when redis_url is not set)
    health: HealthLimits = DEFAULT_LIMITS  # how stale the table's source and the background work may get
    # Discovered backends: the DNS boundary (None: dnspython and getaddrinfo), and whether an address that is
    # link-local or a cloud metadata endpoint may be one (RUSTA_ALLOW_LINK_LOCAL_BACKENDS, as for saved hosts).
    discovery_lookup: Lookup | None = None
    allow_link_local_backends: bool = False
    # The TLS listener: whether this process serves one (plans then hold the table's certificate contexts), and
    # the port that routes redirecting plain HTTP send clients to (443 is left out of the URL).
    tls: bool = False
    https_port: int = 443
    # Routes with an `abuse` block: the length of the per-client counting windows (RUSTA_ABUSE_WINDOW_S) and how
    # many (route, client) pairs one window keeps in this process (RUSTA_ABUSE_MAX_CLIENTS).
    abuse_window_s: float = 10.0
    abuse_max_clients: int = 50_000


class DataPlane:
    """One per process: ProxyApp and WebSocketProxy take the same instance, so they share breakers, in-flight
    counts, JWT policies and rate-limit counters, and one plan per table.

    `plan` is the TablePlan of `state.table`. The table watcher installs tables from its own thread, so the
    plan is swapped on the event loop: `current()` (or the same identity test, inlined on the hot path) builds
    the new table's plan, all of it at once, the first time a request sees the new table. Backends with
    `discovery` are resolved by a task on the same loop (protocols.discovery), which swaps in a new plan of the
    same table whenever their addresses change; a table that has some is planned on the loop, so that the task
    can start there (built off the loop, the first plan is left for the first request's `current()`). Call
    `await aclose()` at shutdown: the discovery task, pooled connections, the DNS listeners, the rate-limit and
    cache stores, the access log.
    """

    def __init__(self, options: ProxyOptions | None = None, access_log: AccessLog | None = None, *,
                 cache: ResponseCache | None = None) -> None:
        options = options or ProxyOptions()
        self.options = options
        self.state = options.state
        self.client = UpstreamClient(pool_size=options.pool_size, idle_timeout=options.idle_timeout,
                                     ssl_context=options.ssl_context,
                                     strip_response_headers=HOP_BY_HOP | _REPLACED_RESPONSE_HEADERS)
        self.grpc = Http2Client()  # gRPC routes' backends, over HTTP/2
        self.balancing = Balancing(options.clock)
        self.access = AccessControl(options.redis_url, options.recorder)
        self.trusted = TrustedPeers(options.trusted_proxies)
        self.request_ids = RequestIds()
        self.access_log = (access_log or AccessLog()) if options.access_log else None
        self.recorder = options.recorder
        self.spans = options.spans
        # Routes with an `abuse` block: what each client does (drained by the worker's flusher) and the verdicts
        # and personalized limits in force (installed by it); protocols.abuse.
        self.abuse = AbuseCounters(options.recorder, window_s=options.abuse_window_s,
                                   max_clients=options.abuse_max_clients)
        self.sanctions = Sanctions()
        # Routes with a `cache` block answer from here: shared by every gateway process through Redis when it
        # is configured, else this process's own memory.
        if cache is None:
            store = (RedisCacheStore(options.redis_url) if options.redis_url
                     else MemoryStore(max_bytes=options.cache_bytes))
            cache = ResponseCache(store, recorder=options.recorder)
        self.cache = cache
        self.ftp = FtpGateway(FtpOptions(ssl_context=options.ssl_context))
        # DNS over HTTPS here; its UDP/TCP listeners when the server starts them. Resolvers follow the plan.
        self.dns = DnsForwarder(self.state, source=lambda: self.current().resolvers)
        # Routes with an `ai_policy`: their LLM calls share the pooled client.
        self.ai = AiRouting(self.client, options.clock)
        # LLM routes' front doors; their token limits and budgets are shared through Redis when it is configured.
        local_budgets = LocalBudgetStore()
        self.llm = LlmGateway(self.client, Budgets(
            RedisBudgetStore(options.redis_url) if options.redis_url else local_budgets, local_budgets),
            answers=RedisAnswers(options.redis_url) if options.redis_url else MemoryAnswers())
        # The TLS listener's certificate contexts, reused across tables while a certificate is unchanged.
        self.certificates = ServerContexts() if options.tls else None
        self.discovery = BackendDiscovery(self._rediscovered, lookup=options.discovery_lookup,
                                          allow_link_local=options.allow_link_local_backends)
        table = self.state.table
        # Off the loop, discovery cannot start: the plan of a stand-in table, so that the first request's
        # current() plans the real one on the loop.
        self.plan: TablePlan = self._build(table if self.discovery.follow(table) else EMPTY_TABLE)

    def current(self) -> TablePlan:
        """The plan of the table served now, built when the table (or what its names resolved to) is new to this
        data plane."""
        plan = self.plan
        table = self.state.table
        if plan.table is not table or plan.discovered is not self.discovery.current:
            plan = self.plan = self._build(table)
        return plan

    def _build(self, table: RouteTable) -> TablePlan:
        """The plan of `table` over what its names resolved to so far; discovery resolves its names from now on."""
        self.discovery.follow(table)
        return build_plan(table, self.access, self.balancing, self.ai, self.discovery.current, self.certificates)

    def _rediscovered(self) -> None:
        """The discovery task's news (on the loop): the table served now gets a plan over the new addresses."""
        self.plan = self._build(self.state.table)

    async def aclose(self) -> None:
        await self.discovery.aclose()
        await self.ai.aclose()
        await self.llm.aclose()
        await self.dns.close()
        await self.client.aclose()
        await self.grpc.aclose()
        await self.access.aclose()
        await self.cache.aclose()
        if self.access_log is not None:
            self.access_log.flush()
