"""The route document, declared once: every field and block with its type, default, range, help and checker.

Everything else is derived from `FIELDS`: the model's defaults and help texts (routes.models), the canonical
document and its validation (routes.validation), the attributes the service layer writes and the document the API
and export show (routes.services), the RouteSpec the data plane reads (routes.snapshot), the API's serializer
(routes.api.serializers) and the admin form (routes.forms). Adding a block is one `Block` here, its keys in
routes.block_keys, its compiler in the data plane, and a model field (with its migration);
tests/routes/test_schema.py walks the declaration and proves each block round-trips through the API, the admin,
export and import, and reaches the data plane.

Defaults come from the data plane where it has them (RouteSpec's timeouts, the balancing registry's strategies),
so the value the proxy applies without a setting is the value the API shows.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocols.auth.consumers import AUTH_MODES
from protocols.balancing import STRATEGIES as BALANCERS
from protocols.table import RouteSpec
from routes import access_blocks, field_checks, guard_blocks, traffic_blocks, transformations
from routes.consumers.route_auth import check_auth

Errors = dict[str, list[str]]
# A check of one field: (its declaration, its value, the whole canonical document, the errors to add to).
Check = Callable[["Field", Any, dict[str, Any], Errors], None]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # no default: the document must give it (or, for `name`, one is made up)

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
PROTOCOL_CHOICES = (("http", "HTTP"), ("websocket", "WebSocket"), ("dns", "DNS"), ("ftp", "FTP"), ("llm", "LLM"),
                    ("grpc", "gRPC"))
STRATEGY_CHOICES = (
    ("round_robin", "Round robin"),
    ("weighted", "Weighted round robin"),
    ("least_connections", "Least connections"),
    ("random", "Random"),
    ("ip_hash", "IP hash"),
    ("latency_aware", "Latency aware (peak EWMA)"),
)
PROTOCOLS = tuple(value for value, _ in PROTOCOL_CHOICES)
STRATEGIES = tuple(value for value, _ in STRATEGY_CHOICES)
if set(STRATEGIES) != set(BALANCERS):  # the data plane's registry is the list of what can balance
    raise ImportError(f"routes.schema's strategies {STRATEGIES} are not the balancing registry's {tuple(BALANCERS)}")

_SPEC_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RouteSpec)}


def _spec_ms(attr: str) -> int:
    """A RouteSpec timeout's default (seconds) in the document's milliseconds."""
    return round(_SPEC_DEFAULTS[attr] * 1000)


@dataclass(frozen=True)
class Field:
    """One top-level field of the route document.

    `kind`: text, int, bool, choice, methods, backends or id (read-only). `spec`: the RouteSpec attribute the data
    plane reads it as (None: not passed), scaled by `spec_scale` (milliseconds to seconds). `check`: the field's
    own rule where its kind's generic one is not enough (a pattern, a host, the backends).
    """

    name: str
    kind: str
    default: Any = REQUIRED
    help: str = ""
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()
    spec: str | None = None
    spec_scale: float = 1.0
    check: Check | None = None
    max_length: int | None = None

    @property
    def is_block(self) -> bool:
        return False

    @property
    def stored(self) -> bool:
        """Whether the service layer writes it as a Route attribute (id and backends are not)."""
        return self.kind not in ("id", "backends")

    def to_spec(self, value: Any) -> Any:
        if self.kind == "methods":
            return tuple(value)
        return value * self.spec_scale if self.spec_scale != 1.0 else value


@dataclass(frozen=True)
class Block(Field):
    """A policy block: a JSON object (or null), stored as sent, compiled by the data plane; `plugins` is a list
    of entries instead (routes.block_keys marks it `listed`).

    `check` is the data plane's compiler wrapped for validation; `protocols` the route protocols whose listeners
    read the block (empty: all), since a block no listener reads would be stored and silently do nothing;
    `admin_help` the admin form's longer text with an example; `secrets` the keys that hold credentials, shown as
    `<redacted>` and kept when sent back so (routes.secrets redacts them, and more: any key or header named like a
    credential, at any depth). Every block reaches the data plane in `RouteSpec.policies`.
    """

    kind: str = "block"
    default: Any = None
    protocols: tuple[str, ...] = ()
    admin_help: str = ""
    secrets: tuple[str, ...] = ()

    @property
    def is_block(self) -> bool:
        return True


def _compiled(check: Callable[[Any, Errors], None]) -> Check:
    """A block's check from its compiler-backed validator (`check(value, errors)`)."""
    return lambda field, value, doc, errors: check(value, errors)


def _tls(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    access_blocks.validate_tls(value, errors, doc.get("protocol"))


def _guard(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    guard_blocks.validate_guard(field.name, value, errors)


FIELDS: tuple[Field, ...] = (
    Field("id", "id", default=None, help="The route's id; read-only, not in exports."),
    Field("name", "text", max_length=100, check=field_checks.check_name, spec="name",
          help="Unique name; generated from the protocol and path when left out (as in the earlier gateway)."),
    Field("enabled", "bool", default=True, help="A disabled route stays configured but is not served."),
    Field("priority", "int", default=_SPEC_DEFAULTS["priority"], low=-1_000_000, high=1_000_000, spec="priority",
          help="Breaks ties between equally specific patterns; higher wins."),
    Field("protocol", "choice", default=_SPEC_DEFAULTS["protocol"], choices=PROTOCOLS, spec="protocol",
          help="Which listener serves the route: http, websocket, dns, ftp, llm (OpenAI's and Anthropic's APIs "
               "in front of the route's llm.targets) or grpc (gRPC calls to HTTP/2 backends; methods POST)."),
    Field("external_path", "text", max_length=2048, check=field_checks.check_external_path, spec="external_path",
          help="Public path; `{name}` captures one whole segment, like `/users/{id}`. Required except on dns "
               "routes, which default to `/dns-query` (DNS over HTTPS, answered before route matching)."),
    Field("internal_path", "text", default=_SPEC_DEFAULTS["internal_path"], max_length=2048,
          check=field_checks.check_internal_path, spec="internal_path",
          help="Path sent upstream with `{name}` filled in; empty forwards the request path unchanged."),
    Field("match_host", "text", default=_SPEC_DEFAULTS["match_host"], max_length=255,
          check=field_checks.check_match_host, spec="match_host",
          help="Only match this Host (exact, or `*.example.com`); empty matches any host."),
    Field("methods", "methods", choices=HTTP_METHODS, check=field_checks.check_methods, spec="methods",
          help="Allowed methods; GET also allows HEAD. Lower case is accepted. Required except on dns routes, "
               "which default to `[\"GET\", \"POST\"]`."),
    Field("backends", "backends", check=field_checks.check_backends,
          help="The upstream servers, like `[{\"host\": \"http://10.0.0.5\", \"port\": 8080}]`."),
    Field("load_balancing_strategy", "choice", default=_SPEC_DEFAULTS["load_balancing_strategy"],
          choices=STRATEGIES, spec="load_balancing_strategy", help="How a backend is picked for each request."),
    Field("auth_required", "bool", default=_SPEC_DEFAULTS["auth_required"], spec="auth_required",
          help="Require a valid JWT (the route's own `jwt` block, else the gateway-wide one): the earlier "
               "gateway's switch, the same as `auth: \"jwt\"`; cannot go with `auth` \"key\" or \"either\"."),
    Field("auth", "choice", default=_SPEC_DEFAULTS["auth"], choices=AUTH_MODES, spec="auth", check=check_auth,
          help="Which credential the route takes: none, key (a consumer's API key, in X-API-Key or "
               "`Authorization: Bearer rk_...`), jwt (a bearer JWT, as `auth_required`) or either; none with "
               "`auth_required` (or a `jwt` block) means jwt. HTTP and WebSocket routes only (a WebSocket "
               "handshake may also send its key as the `api_key` query parameter)."),
    Field("connect_timeout_ms", "int", default=_spec_ms("connect_timeout"), low=1, high=600_000,
          spec="connect_timeout", spec_scale=0.001, help="Time to open a connection to a backend."),
    Field("read_timeout_ms", "int", default=_spec_ms("read_timeout"), low=1, high=3_600_000,
          spec="read_timeout", spec_scale=0.001, help="Longest wait for the backend's next bytes."),
    Field("total_timeout_ms", "int", default=_spec_ms("total_timeout"), low=0, high=3_600_000,
          spec="total_timeout", spec_scale=0.001,
          help="Limit on the whole upstream exchange, retries included (a timeout answers 504); 0: none."),
    Field("preserve_host", "bool", default=_SPEC_DEFAULTS["preserve_host"], spec="preserve_host",
          help="Send the client's Host header upstream."),
    Block("retry", check=field_checks.check_resilience,
          help="When and how often a failed upstream call is retried (exponential backoff with jitter, within a "
               "budget); null: the defaults.",
          admin_help='Like {"max_retries": 3, "retry_on_status_codes": [502, 503]}; POST and PATCH only with '
                     '"retry_non_idempotent"; retries stay within the budget.'),
    Block("health_check", check=field_checks.check_resilience,
          help="Active health checks of the route's backends that have a `health_check_path`; null uses the "
               "defaults.",
          admin_help="Probes of each backend's health check path, like {\"interval_s\": 10}; empty uses the "
                     "defaults (healthy_statuses null: any 2xx or 3xx is healthy); backends without a health check "
                     "path are not probed."),
    Block("circuit_breaker", check=field_checks.check_resilience,
          help="Per-backend circuit breaker; null uses the defaults shown for each key.",
          admin_help='Per backend, like {"failure_threshold": 3}. Empty uses the defaults.'),
    Block("request_transformation", check=_compiled(transformations.validate_request_transformation),
          help="`headers`, `path` and `query_params` rules (the earlier gateway's), plus `body` JSON field rules and "
               "`max_body_bytes`, applied on the way upstream.",
          admin_help='Like {"headers": [{"action": "set", "name": "X-Env", "value": "prod"}], "path": {"pattern": '
                     '"^/api/v1/(.+)$", "replacement": "/$1"}, "query_params": {"remove": ["debug"]}, "body": '
                     '{"remove": ["password"]}}. Actions: add (only if absent), set, remove, replace (pattern + '
                     'replacement), rename (to). With JavaScript the rules show as rows ("Edit as JSON" shows this '
                     'text). Try it with the link at the top of the page.'),
    Block("response_transformation", check=_compiled(transformations.validate_response_transformation),
          help="`headers` rules and `status_code_mappings` with real `condition`s, plus `body` JSON field rules, "
               "applied on the way back.",
          admin_help='Like {"headers": {"remove": ["X-Powered-By"]}, "status_code_mappings": [{"from": 404, "to": '
                     '200, "condition": {"methods": ["GET"], "path": "^/health$"}}], "body": {"rename": '
                     '{"user_name": "username"}}}.'),
    Block("rate_limit", check=_compiled(access_blocks.validate_rate_limit),
          help="This route's own rate limit, replacing the gateway-wide one.",
          admin_help='This route\'s own rate limit, like {"limit": 100, "window_s": 60, "scope": ["ip"], '
                     '"algorithm": "sliding_window"}; empty uses the gateway-wide one.'),
    Block("ai_policy", check=field_checks.check_ai_policy, protocols=("http",), secrets=("api_key",),
          help="AI routing: a strategy (content_analysis, latency_prediction, anomaly_detection or an installed "
               "module) chooses the backend of each request within decision_timeout_ms; null: balancing only. "
               "HTTP routes only.",
          admin_help='Like {"strategy": "content_analysis", "fallback_backend_index": 0} (the LLM from the '
                     'gateway-wide ai block, or "provider" and "model" here), {"strategy": "latency_prediction"} '
                     'or {"strategy": "anomaly_detection", "mode": "shadow"}. HTTP routes only. Secrets shown as '
                     "<redacted> are kept when saved unchanged."),
    Block("plugins", check=field_checks.check_plugins, protocols=("http",),
          help="Installed plugins this route runs, in `order`, after the gateway-wide ones (an entry of the same "
               "`name` replaces the gateway's): a list of `{name, config, order, timeout_ms, on_error}`; null: the "
               "gateway-wide list only. HTTP routes only.",
          admin_help='A list, like [{"name": "example", "config": {"header": "X-Example"}, "timeout_ms": 50}]; each '
                     'name an installed plugin (group rusta.plugins), its config checked by the plugin; on_error '
                     '"fail" answers 502 plugin_failed when it raises or overruns, "continue" goes on without it. '
                     "Empty: the gateway-wide plugins only. HTTP routes only."),
    Block("llm", check=field_checks.check_llm, protocols=("llm",),
          help="An llm route's models (`targets`: provider, model, key, weight, priority, prices, context window), "
               "its prompt `guard`, `token_limits` and `budgets`, `cache` and `max_body_bytes`; required on llm "
               "routes, which answer OpenAI's and Anthropic's APIs under their path.",
          admin_help='llm routes only, like {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}, '
                     '{"provider": "anthropic", "model": "claude-3-5-haiku-latest", "priority": 1}], '
                     '"token_limits": [{"tokens_per_minute": 100000}]}. Keys without api_key come from the '
                     "provider's variable where the gateway runs (OPENAI_API_KEY...). A key shown as <redacted> is "
                     "kept when saved unchanged."),
    Block("cache", check=_compiled(transformations.validate_cache),
          help="The route's response cache; null: answers are not cached.",
          admin_help='Response cache, like {"ttl_s": 60, "vary_headers": ["Accept-Language"]}. Empty: answers are '
                     "not cached."),
    Block("compression", check=_compiled(transformations.validate_compression),
          help="The route's response compression; null: none.",
          admin_help='Like {"enabled": true} for the defaults. Empty: no compression.'),
    Block("cors", check=_guard,
          help="CORS policy; null: the gateway-wide one, if any.",
          admin_help='Like {"origins": ["https://app.example.com", "https://*.example.com"], "credentials": true}; '
                     '"headers" null allows what the preflight asks for. Preflights are answered by the gateway. '
                     'Empty: the gateway-wide policy; {"enabled": false}: none here.'),
    Block("limits", check=_guard,
          help="Request size limits; null: the gateway-wide ones.",
          admin_help='Like {"max_body_bytes": 10485760}: 413 past it, 431 for the header limits, 414 for the URL; '
                     "0 switches one off."),
    Block("ip_rules", check=_guard,
          help="IP allow/deny lists; null: the gateway-wide ones.",
          admin_help='Like {"allow": ["10.0.0.0/8", "2001:db8::/32"], "deny": ["10.0.0.13"]}: deny wins; with an '
                     "allow list, every other address gets 403. Checked against the client address behind trusted "
                     "proxies."),
    Block("security_headers", check=_guard,
          help="Security response headers; null: the gateway-wide ones (on by default).",
          admin_help="On by default; hsts_max_age applies on https only. A backend's own value wins unless "
                     '"override" is true; false switches a header off.'),
    Block("jwt", check=_compiled(access_blocks.validate_jwt), protocols=("http", "websocket", "llm", "grpc"),
          secrets=("secret",),
          help="This route's own JWT settings (keys as in the gateway-wide `jwt` block: `secret`, `public_key(s)`, "
               "`jwks_url`, `issuer`, `audience`, `required_scopes`...); a route with one always requires a token. "
               "The secret reads back as `<redacted>`. Null: the gateway-wide block, used when `auth_required` is "
               "set. HTTP, WebSocket, LLM and gRPC routes only.",
          admin_help='This route\'s own JWT settings, like {"secret": "at least 32 bytes for HS256", "issuer": '
                     '"https://idp.example.com", "required_scopes": ["orders:read"]} or {"jwks_url": '
                     '"https://idp.example.com/.well-known/jwks.json", "algorithms": ["RS256"]}; a route with one '
                     "always requires a token. Empty: the gateway-wide settings, when auth_required is set. HTTP, "
                     "WebSocket, LLM and gRPC routes only. Secrets shown as <redacted> are kept when saved "
                     "unchanged."),
    Block("ftp", check=_compiled(access_blocks.validate_ftp), protocols=("ftp",), secrets=("password",),
          help="FTP login and root of an ftp route (password write-only); null: anonymous login.",
          admin_help='ftp routes only: {"username": "reports", "password": "...", "root": "/srv/reports"}, or '
                     '{"passthrough_basic_auth": true} to log in with the client\'s HTTP Basic credentials. Empty: '
                     "anonymous. A password shown as <redacted> is kept when saved unchanged."),
    Block("websocket", check=_compiled(access_blocks.validate_websocket), protocols=("websocket",),
          help="Message size and idle limits of a websocket route; null: the defaults.",
          admin_help="websocket routes only; an idle timeout of 0: never."),
    Block("tls", check=_tls, protocols=("http", "grpc", "llm"),
          help="TLS on the proxy listener for this route: `redirect_http` (plain HTTP answered with a redirect to "
               "HTTPS, `redirect_status`), client certificates (`client_certificate` off, optional or required, "
               "`client_ca` the accepted CAs in PEM, the verified subject sent upstream in `subject_header`); null: "
               "no redirect, no client certificate. HTTP, gRPC and LLM routes only; client certificates on HTTP "
               "and gRPC routes only.",
          admin_help='Like {"redirect_http": true} or {"client_certificate": "required", "client_ca": "-----BEGIN '
                     'CERTIFICATE-----...", "subject_header": "X-Client-Cert-Subject"}; a request without a '
                     "verified certificate is refused (401) when required. The CA bundle is public material, shown "
                     "as stored. HTTP, gRPC and LLM routes only; client certificates on HTTP and gRPC routes "
                     "only."),
    Block("abuse", check=traffic_blocks.check_abuse, protocols=("http",),
          help="Limits that adapt to abuse: each client's traffic on this route is counted and judged by the "
               "detection task (`mode` shadow records verdicts only; enforce applies `action` lower or block for "
               "`duration_s`), and with `personalized_limits` each client gets a limit learned from its own normal "
               "use; null: not counted. HTTP routes only.",
          admin_help='Like {"mode": "shadow"} to see verdicts first, then {"mode": "enforce", "action": "block", '
                     '"duration_s": 600} or {"mode": "enforce", "action": "lower", "factor": 0.25} (lower needs a '
                     "rate_limit or personalized_limits). HTTP routes only."),
    Block("api_docs", check=traffic_blocks.check_api_docs, protocols=("http",),
          help="API docs learned from traffic: `sample_rate` of requests whose shapes (never values) are recorded, "
               "bodies read up to `max_body_bytes`, and `openapi`, the declared document the learned one is "
               "compared with; null: nothing sampled. HTTP routes only.",
          admin_help='Like {"sample_rate": 0.05} or {"sample_rate": 0.01, "openapi": {"openapi": "3.0.3", '
                     '"paths": {...}}}. HTTP routes only.'),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES = tuple(f.name for f in FIELDS)
BLOCK_NAMES = tuple(f.name for f in FIELDS if f.is_block)
STORED_NAMES = tuple(f.name for f in FIELDS if f.stored)
BLOCKS_BY_NAME: dict[str, Block] = {f.name: f for f in FIELDS if isinstance(f, Block)}


def defaults() -> dict[str, Any]:
    """Every field that has a default, with it (blocks: null)."""
    return {f.name: f.default for f in FIELDS if f.default is not REQUIRED and f.kind != "id"}
