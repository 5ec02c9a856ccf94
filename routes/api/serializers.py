"""The management API's documents: the route document (the earlier gateway's router object) and config shapes.

Field declarations describe the shape for the OpenAPI schema; validation itself is routes.validation's, reached
through routes.services, so the API, the admin and the import can never disagree about what is valid.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from protocols.ai import config as ai_config
from protocols.discovery import config as discovery_config
from protocols.resilience import Rule
from routes import schema, services
from routes.api.access_serializers import FtpPolicySerializer, TlsPolicySerializer, WebSocketPolicySerializer
from routes.api.guard_serializers import CorsSerializer, IpRulesSerializer, LimitsSerializer, SecurityHeadersSerializer
from routes.block_keys import BLOCKS, NO_DEFAULT, defaults
from routes.models import Route
from routes.resilience_blocks import RULES as RESILIENCE_RULES
from routes.secrets import redact

# The shown defaults are the data plane's own, declared once in routes.block_keys.
_CACHE = defaults("cache")
_COMPRESSION = defaults("compression")


class BackendDiscoverySerializer(serializers.Serializer):
    """How a backend's addresses are found by DNS (protocols.discovery); null: its host as it is."""

    type = serializers.ChoiceField(
        choices=discovery_config.KINDS,
        help_text="`a`: every A and AAAA address of the host, each a backend at the backend's port; `srv`: the host "
                  "is an SRV name (like `_http._tcp.api.internal`) whose targets of the lowest priority, with "
                  "their ports and weights (times the backend's), are the backends.")
    interval_s = serializers.FloatField(
        required=False, min_value=discovery_config.MIN_INTERVAL_S, max_value=discovery_config.MAX_INTERVAL_S,
        default=discovery_config.DEFAULT_INTERVAL_S,
        help_text="Seconds between resolutions; addresses that appear get traffic, and those that went away are "
                  "drained, within it. A failed resolution keeps the last addresses known.")
    resolver = serializers.CharField(
        required=False, allow_null=True, default=None,
        help_text="The DNS server to ask, an IP address with an optional port (`127.0.0.1:8600`, `[fd00::53]`); "
                  "null: the system's (getaddrinfo for `a`, /etc/resolv.conf for `srv`).")


class BackendTlsSerializer(serializers.Serializer):
    """How the gateway's TLS client checks an https or wss backend; null: the system's CAs and the host's name."""

    ca = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="PEM bundle of the CAs that sign this backend's certificate, used instead of the system's "
                  "(public material, shown as stored).")
    server_name = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="The DNS name sent as SNI and verified in the backend's certificate; empty: the backend's host.")
    verify = serializers.BooleanField(
        required=False, default=True,
        help_text="false accepts any certificate (a test backend's self-signed one): the connection is encrypted "
                  "but not authenticated.")


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
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=500,
        help_text="What this backend is for; AI routing's content_analysis shows it to the model.")
    discovery = BackendDiscoverySerializer(
        required=False, allow_null=True,
        help_text="Find the backend's addresses by DNS, each balanced (and given a circuit breaker) as a backend "
                  "of its own; shown only when set. Not with wss/ftps, a health_check_path or an ai_policy.")
    tls = BackendTlsSerializer(
        required=False, allow_null=True,
        help_text="TLS options of an https or wss backend (its CA bundle, the name to verify, verification); "
                  "shown only when set.")


def _rule_field(rule: Rule, default: Any) -> serializers.Field:
    """The serializer field of one resilience key, from its rule (protocols.resilience, routes.resilience_blocks)."""
    options: dict[str, Any] = {"required": False, "help_text": rule.help}
    if default is not NO_DEFAULT:
        options["default"] = default
    if rule.kind == "int":
        return serializers.IntegerField(min_value=int(rule.low), max_value=int(rule.high), **options)
    if rule.kind in ("number", "ratio_or_null"):
        return serializers.FloatField(min_value=rule.low, max_value=rule.high,
                                      allow_null=rule.kind == "ratio_or_null", **options)
    if rule.kind == "bool":
        return serializers.BooleanField(**options)
    return serializers.ListField(child=serializers.IntegerField(min_value=int(rule.low), max_value=int(rule.high)),
                                 min_length=None if rule.allow_empty else 1, allow_null=default is None, **options)


def _rule_fields(block: str) -> dict[str, serializers.Field]:
    keys = BLOCKS[block].keys
    return {key: _rule_field(rule, keys[key]) for key, rule in RESILIENCE_RULES[block].items()}


class RetryPolicySerializer(serializers.Serializer):
    """When and how often a failed upstream call is retried (exponential backoff with jitter, within a budget)."""


class HealthCheckSerializer(serializers.Serializer):
    """Active health checks of the route's backends that have a `health_check_path`; null uses the defaults."""


class CircuitBreakerSerializer(serializers.Serializer):
    """Per-backend circuit breaker: closed, open (fail fast) after failures, half-open trials, closed again."""


# Their keys are the rules' (one declaration for validation, the data plane's reader and this schema).
RetryPolicySerializer._declared_fields = _rule_fields("retry")
HealthCheckSerializer._declared_fields = _rule_fields("health_check")
CircuitBreakerSerializer._declared_fields = _rule_fields("circuit_breaker")


class AiPolicySerializer(serializers.Serializer):
    """AI routing: a strategy chooses each request's backend within `decision_timeout_ms` (protocols.ai.config
    lists every key; a strategy's own keys apply to that strategy only)."""

    enabled = serializers.BooleanField(required=False, default=True)
    strategy = serializers.JSONField(
        required=False,
        help_text="`\"content_analysis\"`, `\"latency_prediction\"`, `\"anomaly_detection\"`, an installed module's "
                  "name, or the earlier gateway's `{\"content_analysis\": {\"model\": \"gpt-4o\"}}`.")
    fallback_backend_index = serializers.IntegerField(
        required=False, allow_null=True, min_value=0,
        help_text="Position of the backend taken when the strategy has no answer in time; null: balancing.")
    decision_timeout_ms = serializers.IntegerField(required=False, min_value=1, max_value=60_000,
                                                   default=ai_config.DEFAULT_DECISION_TIMEOUT_MS)
    decision_header = serializers.BooleanField(required=False, default=False,
                                               help_text="Answer with X-Rusta-AI-Decision.")
    provider = serializers.CharField(required=False, allow_null=True,
                                     help_text="openai, anthropic, ollama, openai_compatible (with base_url), "
                                               "groq, mistral, xai; default: the gateway-wide `ai` block's.")
    model = serializers.CharField(required=False, allow_null=True)
    api_key = serializers.CharField(required=False, allow_null=True, help_text="Write-only: reads as <redacted>.")
    base_url = serializers.CharField(required=False, allow_null=True)
    timeout_ms = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=600_000)
    max_concurrency = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10_000)
    fallback_providers = serializers.ListField(child=serializers.JSONField(), required=False,
                                               help_text="Names or {provider, model, base_url}, asked in turn.")
    streaming = serializers.BooleanField(required=False, default=False, help_text="false only.")
    learn = serializers.ChoiceField(choices=("sync", "async"), required=False, help_text="content_analysis.")
    confidence = serializers.FloatField(required=False, min_value=0.5, max_value=1, help_text="content_analysis.")
    sample_rate = serializers.FloatField(required=False, min_value=0, max_value=1, help_text="content_analysis.")
    cache_ttl_s = serializers.FloatField(required=False, min_value=0, max_value=86_400,
                                         help_text="content_analysis.")
    min_samples = serializers.FloatField(required=False, min_value=1, max_value=1000, help_text="latency_prediction.")
    horizon_s = serializers.FloatField(required=False, min_value=1, max_value=86_400, help_text="latency_prediction.")
    mode = serializers.ChoiceField(choices=("shadow", "enforce"), required=False, help_text="anomaly_detection.")
    anomaly_backend_index = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                     help_text="anomaly_detection: the lane; null refuses (429).")
    threshold = serializers.FloatField(required=False, min_value=0.1, max_value=1000, help_text="anomaly_detection.")
    window_s = serializers.FloatField(required=False, min_value=0.5, max_value=3600, help_text="anomaly_detection.")
    options = serializers.DictField(required=False, help_text="An installed module's own options.")


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


def _plugin_list(help_text: str) -> serializers.ListField:
    """A `plugins` list: its entries go to validation as sent (`name`, `config`, `order`, `timeout_ms`,
    `on_error`), so an unknown key in one is refused by its path, not dropped."""
    return serializers.ListField(child=serializers.DictField(), required=False, allow_null=True,
                                 help_text=help_text)


# The blocks whose keys the OpenAPI schema spells out; any other block is a JSON object (`_policy_block`).
BLOCK_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "retry": RetryPolicySerializer, "health_check": HealthCheckSerializer, "circuit_breaker": CircuitBreakerSerializer,
    "ai_policy": AiPolicySerializer, "cache": CachePolicySerializer, "compression": CompressionPolicySerializer,
    "cors": CorsSerializer, "limits": LimitsSerializer, "ip_rules": IpRulesSerializer,
    "security_headers": SecurityHeadersSerializer, "ftp": FtpPolicySerializer, "websocket": WebSocketPolicySerializer,
    "tls": TlsPolicySerializer,
}


def _declared_field(declared: schema.Field) -> serializers.Field:
    """The serializer field of one route field, from its declaration (routes.schema)."""
    options: dict[str, Any] = {"required": False, "help_text": declared.help}
    if declared.default is not schema.REQUIRED and not declared.is_block:
        options["default"] = declared.default
    if declared.is_block and BLOCKS[declared.name].listed:
        return _plugin_list(declared.help)
    if declared.is_block:
        block = BLOCK_SERIALIZERS.get(declared.name)
        if block is None:
            return _policy_block(declared.help)
        return block(allow_null=True, **options)
    if declared.kind == "int":
        return serializers.IntegerField(min_value=declared.low, max_value=declared.high, **options)
    if declared.kind == "bool":
        return serializers.BooleanField(**options)
    if declared.kind == "choice":
        return serializers.ChoiceField(choices=declared.choices, **options)
    if declared.kind == "methods":
        return serializers.ListField(child=serializers.ChoiceField(choices=declared.choices), **options)
    if declared.kind == "backends":
        return BackendSerializer(many=True, required=False)
    # Text: a field with a default may be empty.
    return serializers.CharField(allow_blank="default" in options, max_length=declared.max_length, **options)


class RouterSerializer(serializers.Serializer):
    """A route document: the earlier gateway's router object plus Rusta's own fields (routes.schema's, below)."""

    host = serializers.CharField(
        write_only=True, required=False,
        help_text="Legacy single-backend form of the earlier gateway; used only when `backends` is absent.")
    port = serializers.IntegerField(write_only=True, required=False, help_text="Port of the legacy `host`.")


# Every field routes.schema declares, in its order, before the legacy ones (the id is RouteSerializer's: a
# configuration file has none).
RouterSerializer._declared_fields = {
    **{declared.name: _declared_field(declared) for declared in schema.FIELDS if declared.kind != "id"},
    **RouterSerializer._declared_fields,
}


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


class RouteRefusalSerializer(serializers.Serializer):
    """The dry run's answer to a document that would be refused: its errors by path."""

    valid = serializers.BooleanField(help_text="Always false.")
    errors = serializers.DictField(  # type: ignore[assignment]  # the answer's key, as in ErrorsSerializer
        child=serializers.ListField(child=serializers.CharField()))
    unknown_keys = serializers.ListField(child=serializers.CharField(),
                                         help_text="Keys that would be ignored or are not used by Rusta.")


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
    ai = _policy_block("The LLM routes with an `ai_policy` ask unless they name their own: `provider`, `model`, "
                       "`api_key` (else the provider's environment variable), `base_url`, `timeout_ms`, "
                       "`max_concurrency`.")
    cors = CorsSerializer(required=False, allow_null=True, help_text="For routes without their own `cors`.")
    limits = LimitsSerializer(required=False, allow_null=True, help_text="For routes without their own `limits`.")
    ip_rules = IpRulesSerializer(required=False, allow_null=True,
                                 help_text="For routes without their own `ip_rules`.")
    security_headers = SecurityHeadersSerializer(required=False, allow_null=True,
                                                 help_text="For routes without their own `security_headers`.")
    plugins = _plugin_list("Installed plugins every http route runs: a list of `{name, config, order, timeout_ms, "
                           "on_error}`; a route's own entry of the same name replaces one here.")


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


# One document, though the `list` action answers it: without many=False the schema would say an array.
@extend_schema_serializer(many=False)
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
