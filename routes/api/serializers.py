"""The management API's documents: the route document (the earlier gateway's router object) and config shapes.

Field declarations describe the shape for the OpenAPI schema; validation itself is routes.validation's, reached
through routes.services, so the API, the admin and the import can never disagree about what is valid.
"""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from routes import services
from routes.api.access_serializers import FtpPolicySerializer, WebSocketPolicySerializer
from routes.api.guard_serializers import CorsSerializer, IpRulesSerializer, LimitsSerializer, SecurityHeadersSerializer
from routes.block_keys import defaults
from routes.models import Route
from routes.resilience_blocks import CIRCUIT_BREAKER_DEFAULTS, HEALTH_CHECK_DEFAULTS, RETRY_BUDGET_DEFAULTS
from routes.secrets import redact
from routes.validation import HTTP_METHODS, PROTOCOLS, STRATEGIES

# The shown defaults are the data plane's own, declared once in routes.block_keys.
_CACHE = defaults("cache")
_COMPRESSION = defaults("compression")


class BackendSerializer(serializers.Serializer):
    """One upstream server of a route."""

    id = serializers.IntegerField(
        read_only=True,
        help_text="The backend's id, for `/api/backends/{id}/health/`; kept across edits that keep the backend's "
                  "scheme, host and port. Ignored when sent back; not in exports.")
    host = serializers.CharField(
        help_text="Scheme and host, like `http://10.0.0.5`, `wss://chat.internal` or `[::1]` in brackets; a bare "
                  "host takes the protocol's scheme (a DNS route's `8.8.8.8` means `dns://8.8.8.8`). No port or path.")
    port = serializers.IntegerField(
        min_value=1, max_value=65535, required=False,
        help_text="Defaults to the scheme's port (80, 443, 21 or 53).")
    weight = serializers.IntegerField(min_value=1, max_value=1000, required=False, default=1,
                                      help_text="Share of requests under the `weighted` strategy.")
    health_check_path = serializers.CharField(required=False, allow_null=True, default=None,
                                              help_text="Path probed by health checks, or null for none.")
    enabled = serializers.BooleanField(required=False, default=True,
                                       help_text="A disabled backend stays configured but gets no traffic.")


class RetryPolicySerializer(serializers.Serializer):
    """When and how often a failed upstream call is retried (exponential backoff with jitter, within a budget)."""

    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
    initial_backoff_ms = serializers.IntegerField(min_value=0, max_value=60_000, required=False)
    max_backoff_ms = serializers.IntegerField(min_value=0, max_value=600_000, required=False,
                                              help_text="Also caps an upstream's `Retry-After`.")
    backoff_multiplier = serializers.FloatField(min_value=1, max_value=10, required=False)
    retry_on_status_codes = serializers.ListField(
        child=serializers.IntegerField(min_value=100, max_value=599), required=False)
    retry_on_connection_error = serializers.BooleanField(required=False)
    retry_non_idempotent = serializers.BooleanField(
        required=False, default=RETRY_BUDGET_DEFAULTS["retry_non_idempotent"],
        help_text="Also retry POST and PATCH; only idempotent methods are retried by default.")
    budget_ratio = serializers.FloatField(
        required=False, min_value=0, max_value=1, default=RETRY_BUDGET_DEFAULTS["budget_ratio"],
        help_text="Retries may add at most this share of extra upstream requests over the window.")
    budget_window_s = serializers.IntegerField(
        required=False, min_value=1, max_value=600, default=RETRY_BUDGET_DEFAULTS["budget_window_s"],
        help_text="The rolling window of the retry budget, in seconds.")
    budget_min_per_s = serializers.FloatField(
        required=False, min_value=0, max_value=1000, default=RETRY_BUDGET_DEFAULTS["budget_min_per_s"],
        help_text="Retries per second always allowed, so that a quiet route can still retry.")


class HealthCheckSerializer(serializers.Serializer):
    """Active health checks of the route's backends that have a `health_check_path`; null uses the defaults."""

    interval_s = serializers.IntegerField(min_value=1, max_value=3600, required=False,
                                          default=HEALTH_CHECK_DEFAULTS["interval_s"],
                                          help_text="Seconds between two probes of a backend.")
    timeout_ms = serializers.IntegerField(min_value=50, max_value=60_000, required=False,
                                          default=HEALTH_CHECK_DEFAULTS["timeout_ms"],
                                          help_text="A probe without an answer by then fails with `timeout`.")
    healthy_threshold = serializers.IntegerField(
        min_value=1, max_value=100, required=False, default=HEALTH_CHECK_DEFAULTS["healthy_threshold"],
        help_text="Consecutive successful probes that bring an unhealthy backend back.")
    unhealthy_threshold = serializers.IntegerField(
        min_value=1, max_value=100, required=False, default=HEALTH_CHECK_DEFAULTS["unhealthy_threshold"],
        help_text="Consecutive failed probes that take a backend out of rotation.")
    healthy_statuses = serializers.ListField(
        child=serializers.IntegerField(min_value=100, max_value=599), required=False, allow_null=True,
        min_length=1, default=None, help_text="Statuses that count as healthy; null means any 2xx or 3xx.")


class CircuitBreakerSerializer(serializers.Serializer):
    """Per-backend circuit breaker: closed, open (fail fast) after failures, half-open trials, closed again."""

    enabled = serializers.BooleanField(required=False, default=CIRCUIT_BREAKER_DEFAULTS["enabled"])
    failure_threshold = serializers.IntegerField(
        min_value=1, max_value=1000, required=False, default=CIRCUIT_BREAKER_DEFAULTS["failure_threshold"],
        help_text="Consecutive failures that open the breaker.")
    failure_ratio = serializers.FloatField(
        min_value=0, max_value=1, required=False, allow_null=True, default=CIRCUIT_BREAKER_DEFAULTS["failure_ratio"],
        help_text="Also open when this share of requests failed within `window_s` (once `min_requests` were "
                  "made); null: consecutive failures only.")
    window_s = serializers.IntegerField(min_value=1, max_value=3600, required=False,
                                        default=CIRCUIT_BREAKER_DEFAULTS["window_s"])
    min_requests = serializers.IntegerField(min_value=1, max_value=100_000, required=False,
                                            default=CIRCUIT_BREAKER_DEFAULTS["min_requests"])
    open_s = serializers.IntegerField(min_value=1, max_value=3600, required=False,
                                      default=CIRCUIT_BREAKER_DEFAULTS["open_s"],
                                      help_text="Seconds an open breaker fails fast before it lets trials through.")
    half_open_requests = serializers.IntegerField(
        min_value=1, max_value=1000, required=False, default=CIRCUIT_BREAKER_DEFAULTS["half_open_requests"],
        help_text="Trial requests let through at once while half-open.")
    success_threshold = serializers.IntegerField(
        min_value=1, max_value=1000, required=False, default=CIRCUIT_BREAKER_DEFAULTS["success_threshold"],
        help_text="Successful trials that close the breaker again.")
    failure_statuses = serializers.ListField(
        child=serializers.IntegerField(min_value=500, max_value=599), required=False,
        default=CIRCUIT_BREAKER_DEFAULTS["failure_statuses"],
        help_text="Upstream statuses that count as failures, besides connection errors and timeouts.")


class AiPolicySerializer(serializers.Serializer):
    """AI-assisted backend selection, as the earlier gateway configured it."""

    enabled = serializers.BooleanField(required=False)
    strategy = serializers.JSONField(
        required=False,
        help_text="`\"content_analysis\"`, `{\"content_analysis\": {\"model\": \"gpt-4o\"}}`, "
                  "`\"latency_prediction\"` or `\"anomaly_detection\"`.")
    provider = serializers.CharField(required=False, allow_null=True)
    fallback_backend_index = serializers.IntegerField(
        required=False, allow_null=True, min_value=0,
        help_text="Position of the backend used when the AI cannot decide.")
    fallback_providers = serializers.ListField(child=serializers.DictField(), required=False)
    streaming = serializers.BooleanField(required=False, allow_null=True)


class CachePolicySerializer(serializers.Serializer):
    """The route's response cache (see protocols.cache); null: answers are not cached."""

    enabled = serializers.BooleanField(required=False, default=_CACHE["enabled"])
    ttl_s = serializers.FloatField(required=False, min_value=0, default=_CACHE["ttl_s"],
                                   help_text="Freshness when the upstream sends no max-age, s-maxage or Expires.")
    vary_headers = serializers.ListField(child=serializers.CharField(), required=False, default=list,
                                         help_text="Request fields that are part of every key.")
    store_set_cookie = serializers.BooleanField(required=False, default=_CACHE["store_set_cookie"],
                                                help_text="Store answers that carry Set-Cookie.")
    stale_if_error_s = serializers.FloatField(
        required=False, min_value=0, default=_CACHE["stale_if_error_s"],
        help_text="How long after expiry the last good copy answers for a failing upstream (X-Cache: STALE).")
    max_body_bytes = serializers.IntegerField(required=False, min_value=1, default=_CACHE["max_body_bytes"])
    methods = serializers.ListField(child=serializers.CharField(), required=False, default=_CACHE["methods"],
                                    help_text="GET and/or HEAD: the methods answered from the cache.")
    statuses = serializers.ListField(
        child=serializers.IntegerField(min_value=200, max_value=599), required=False,
        help_text=f"Default: {', '.join(str(status) for status in _CACHE['statuses'])}.")
    coalesce = serializers.BooleanField(required=False, default=_CACHE["coalesce"],
                                        help_text="Concurrent misses for one key make one upstream request.")
    coalesce_wait_s = serializers.FloatField(required=False, min_value=0.01, default=_CACHE["coalesce_wait_s"])


class CompressionPolicySerializer(serializers.Serializer):
    """The route's response compression (see protocols.compression); null: none."""

    enabled = serializers.BooleanField(required=False, default=_COMPRESSION["enabled"])
    algorithms = serializers.ListField(child=serializers.ChoiceField(choices=_COMPRESSION["algorithms"]),
                                       required=False, default=_COMPRESSION["algorithms"],
                                       help_text="Preference among codings the client accepts equally.")
    content_types = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Media types to compress; `text/*` and `application/*+json` patterns allowed.")
    min_bytes = serializers.IntegerField(required=False, min_value=0, default=_COMPRESSION["min_bytes"])
    gzip_level = serializers.IntegerField(required=False, min_value=1, max_value=9,
                                          default=_COMPRESSION["gzip_level"])
    brotli_quality = serializers.IntegerField(required=False, min_value=0, max_value=11,
                                              default=_COMPRESSION["brotli_quality"])
    zstd_level = serializers.IntegerField(required=False, min_value=1, max_value=19,
                                          default=_COMPRESSION["zstd_level"])


def _policy_block(help_text: str) -> serializers.DictField:
    return serializers.DictField(required=False, allow_null=True, help_text=help_text)


class RouterSerializer(serializers.Serializer):
    """A route document: the earlier gateway's router object plus Rusta's own fields."""

    name = serializers.CharField(
        required=False, max_length=100,
        help_text="Unique name; generated from the protocol and path when left out (as in the earlier gateway).")
    enabled = serializers.BooleanField(required=False, default=True)
    priority = serializers.IntegerField(
        required=False, default=0, help_text="Breaks ties between equally specific patterns; higher wins.")
    protocol = serializers.ChoiceField(choices=PROTOCOLS, required=False, default="http")
    external_path = serializers.CharField(
        required=False,
        help_text="Public path; `{name}` captures one whole segment, like `/users/{id}`. Required except on dns "
                  "routes, which default to `/dns-query` (DNS over HTTPS, answered before route matching).")
    internal_path = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="Path sent upstream with `{name}` filled in; empty forwards the request path unchanged.")
    match_host = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="Only match this Host (exact, or `*.example.com`); empty matches any host.")
    methods = serializers.ListField(
        child=serializers.ChoiceField(choices=HTTP_METHODS),
        required=False,
        help_text="Allowed methods; GET also allows HEAD. Lower case is accepted. Required except on dns routes, "
                  "which default to `[\"GET\", \"POST\"]`.")
    backends = BackendSerializer(many=True, required=False)
    load_balancing_strategy = serializers.ChoiceField(choices=STRATEGIES, required=False, default="round_robin")
    auth_required = serializers.BooleanField(
        required=False, default=False,
        help_text="Require a valid JWT (the route's own `jwt` block, else the gateway-wide one).")
    connect_timeout_ms = serializers.IntegerField(required=False, default=5000, min_value=1, max_value=600_000)
    read_timeout_ms = serializers.IntegerField(required=False, default=30000, min_value=1, max_value=3_600_000)
    total_timeout_ms = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=3_600_000,
        help_text="Limit on the whole upstream exchange, retries included (a timeout answers 504); 0: none.")
    preserve_host = serializers.BooleanField(required=False, default=False,
                                             help_text="Send the client's Host header upstream.")
    retry = RetryPolicySerializer(required=False, allow_null=True)
    health_check = HealthCheckSerializer(required=False, allow_null=True)
    circuit_breaker = CircuitBreakerSerializer(required=False, allow_null=True,
                                               help_text="Null uses the defaults shown for each key.")
    request_transformation = _policy_block(
        "`headers`, `path` and `query_params` rules (the earlier gateway's), plus `body` JSON field rules and "
        "`max_body_bytes`, applied on the way upstream.")
    response_transformation = _policy_block(
        "`headers` rules and `status_code_mappings` with real `condition`s, plus `body` JSON field rules, applied "
        "on the way back.")
    rate_limit = _policy_block("This route's own rate limit, replacing the gateway-wide one.")
    ai_policy = AiPolicySerializer(required=False, allow_null=True)
    cache = CachePolicySerializer(required=False, allow_null=True)
    compression = CompressionPolicySerializer(required=False, allow_null=True)
    cors = CorsSerializer(required=False, allow_null=True, help_text="Null: the gateway-wide CORS policy, if any.")
    limits = LimitsSerializer(required=False, allow_null=True, help_text="Null: the gateway-wide limits.")
    ip_rules = IpRulesSerializer(required=False, allow_null=True, help_text="Null: the gateway-wide lists.")
    security_headers = SecurityHeadersSerializer(required=False, allow_null=True,
                                                 help_text="Null: the gateway-wide settings (on by default).")
    jwt = _policy_block(
        "This route's own JWT settings (keys as in the gateway-wide `jwt` block: `secret`, `public_key(s)`, "
        "`jwks_url`, `issuer`, `audience`, `required_scopes`...); a route with one always requires a token. "
        "The secret reads back as `<redacted>`. Null: the gateway-wide block, used when `auth_required` is set. "
        "HTTP and WebSocket routes only.")
    ftp = FtpPolicySerializer(required=False, allow_null=True, help_text="ftp routes only; null: anonymous login.")
    websocket = WebSocketPolicySerializer(required=False, allow_null=True,
                                          help_text="websocket routes only; null: the defaults.")
    host = serializers.CharField(
        write_only=True, required=False,
        help_text="Legacy single-backend form of the earlier gateway; used only when `backends` is absent.")
    port = serializers.IntegerField(write_only=True, required=False, help_text="Port of the legacy `host`.")


class RouteSerializer(RouterSerializer):
    """A stored route. Writes go through routes.services; secrets read back as `<redacted>`.

    Sending `<redacted>` back (a document read from this API) keeps the stored secret. Unknown keys, such as the
    earlier gateway's `_comment`, are ignored.
    """

    id = serializers.IntegerField(read_only=True)

    def to_internal_value(self, data: Any) -> Any:
        # The raw document goes to the service layer, which normalizes (legacy host/port) and validates it.
        if not isinstance(data, dict):
            raise services.ConfigError({"": ["Send one route as a JSON object."]})
        return dict(data)

    def to_representation(self, instance: Route | dict[str, Any]) -> dict[str, Any]:
        doc = services.route_document(instance) if isinstance(instance, Route) else instance
        return redact(doc)

    def create(self, validated_data: dict[str, Any]) -> Route:
        return services.save_route(validated_data, actor=self.context["request"].user, source="api")

    def update(self, instance: Route, validated_data: dict[str, Any]) -> Route:
        return services.save_route(validated_data, actor=self.context["request"].user, source="api",
                                   route=instance, partial=self.partial)


class ErrorsSerializer(serializers.Serializer):
    """Field-level errors: a path like `backends[0].port` (or `routers[2].methods`) to its messages."""

    # The answer's key is `errors`, which DRF's Serializer also names its validation errors; declared fields win.
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class RouteValidationSerializer(serializers.Serializer):
    """The dry run's answer: the normalized document, or the errors that would refuse it."""

    valid = serializers.BooleanField()
    route = RouteSerializer(required=False, help_text="The document as it would be saved (when valid).")
    errors = serializers.DictField(  # type: ignore[assignment]  # the answer's key, as in ErrorsSerializer
        child=serializers.ListField(child=serializers.CharField()), required=False)
    warnings = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Problems that do not refuse the document, by field path: a backend host name that does not "
                  "resolve from this gateway (when valid).",
    )
    unknown_keys = serializers.ListField(child=serializers.CharField(), required=False,
                                         help_text="Keys that would be ignored or are not used by Rusta.")


class GatewaySettingsSerializer(serializers.Serializer):
    """The gateway-wide settings blocks; null (or, in a PUT, left out): no block. Secrets read back as
    `<redacted>`, and sending `<redacted>` back keeps the stored secret."""

    jwt = _policy_block("`secret`, `issuer`, `audience`, `required_claims` (and Rusta's keys) for routes with "
                        "`auth_required` and no `jwt` block of their own.")
    rate_limit = _policy_block("The gateway-wide rate limit.")
    ai = _policy_block("`provider`, `model`, `api_key` used by routes with an `ai_policy`.")
    cors = CorsSerializer(required=False, allow_null=True, help_text="For routes without their own `cors`.")
    limits = LimitsSerializer(required=False, allow_null=True, help_text="For routes without their own `limits`.")
    ip_rules = IpRulesSerializer(required=False, allow_null=True,
                                 help_text="For routes without their own `ip_rules`.")
    security_headers = SecurityHeadersSerializer(required=False, allow_null=True,
                                                 help_text="For routes without their own `security_headers`.")


class SettingsChangeSerializer(serializers.Serializer):
    """What a PUT or PATCH of the settings did (or, in a dry run, would do)."""

    settings = GatewaySettingsSerializer(help_text="Every block after the change, secrets redacted.")
    added = serializers.ListField(child=serializers.CharField(), help_text="Blocks that were null before.")
    changed = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField(), help_text="Blocks that are null now.")
    dry_run = serializers.BooleanField(help_text="True when nothing was changed (?dry_run=true).")
    version = serializers.IntegerField(help_text="The configuration version after the change (bumped only when "
                                                 "a block changed).")


class ConfigFileSerializer(GatewaySettingsSerializer):
    """The whole configuration in the earlier gateway's file format."""

    version = serializers.IntegerField(required=False, help_text="File format version; always 1.")
    routers = RouterSerializer(many=True)


class DatabaseStateSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="Bumped by every change.")
    changed_at = serializers.DateTimeField(allow_null=True)
    health_version = serializers.IntegerField(help_text="Bumped whenever a backend's effective health changes.")


class LiveTableSerializer(serializers.Serializer):
    loaded = serializers.BooleanField(help_text="False until this process built its first route table.")
    version = serializers.IntegerField(help_text="Configuration version the table was built from.")
    built_at = serializers.DateTimeField(allow_null=True)
    routes = serializers.IntegerField(help_text="Enabled routes in the table.")
    health_version = serializers.IntegerField(
        help_text="Health version of the overlay this process uses; -1 before it loaded one.")
    down_backends = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Ids of the backends this process takes out of rotation (health checks and overrides).")


class ConfigStatusSerializer(serializers.Serializer):
    """The stored configuration's version next to the one this process is serving."""

    database = DatabaseStateSerializer()
    live = LiveTableSerializer()
    in_sync = serializers.BooleanField(help_text="True when this process serves the stored version.")
    health_in_sync = serializers.BooleanField(help_text="True when this process uses the stored health version.")


class ConfigSerializer(ConfigFileSerializer):
    """The whole configuration (secrets redacted) with its status."""

    status = ConfigStatusSerializer()


class ImportReportSerializer(serializers.Serializer):
    """What an import changed (route names, gateway-wide settings blocks by name), and the keys by path that
    Rusta does not use."""

    created = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.ListField(child=serializers.CharField())
    deleted = serializers.ListField(child=serializers.CharField())
    settings_added = serializers.ListField(child=serializers.CharField())
    settings_changed = serializers.ListField(child=serializers.CharField())
    settings_removed = serializers.ListField(child=serializers.CharField())
    unknown_keys = serializers.ListField(child=serializers.CharField())
    dry_run = serializers.BooleanField(help_text="True when nothing was changed (?dry_run=true).")
    version = serializers.IntegerField(help_text="The configuration version after the import (unchanged by a "
                                                 "dry run).")


class ReloadSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The new configuration version every gateway will load.")
