"""Configuration stored in the database: routes, their backends, global policies and the audit trail."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

# Consumers live in routes.consumers, certificates in routes.certificates, backend health in routes.health, applied
# references in routes.config_references; importing their models here files them under this app.
from routes.certificates.models import Certificate  # noqa: F401
from routes.config_references import ConfigReference  # noqa: F401
from routes.consumers.models import ApiKey, Consumer, ConsumerSubject  # noqa: F401
from routes.health.models import (  # noqa: F401
    BackendHealth,
    HealthEvent,
    HealthProbe,
    HealthState,
    Override,
    ProbeReason,
)
from routes.schema import BY_NAME, PROTOCOL_CHOICES, STRATEGY_CHOICES


def _default(name: str) -> Any:
    return BY_NAME[name].default


def _help(name: str) -> str:
    return BY_NAME[name].help


def _block_field(name: str) -> models.JSONField[Any]:
    """A policy block's column: JSON or null, as routes.schema declares it."""
    return models.JSONField(null=True, blank=True, help_text=_help(name))


class Route(models.Model):
    """A public path pattern (and optional host) mapped to a pool of backends, with its policies.

    Policy blocks (`retry`, transformations, `rate_limit`, `ai_policy`) keep the earlier gateway's JSON shape;
    `health_check`, `circuit_breaker`, the request guards and the access blocks (`jwt`, `ftp`, `websocket`) are
    Rusta's own. routes.validation checks them (with the data plane's own compilers where it has them) and the
    data plane compiles them.
    """

    name = models.CharField(max_length=100, unique=True)
    external_path = models.CharField(max_length=2048, help_text=_help("external_path"))
    match_host = models.CharField(max_length=255, blank=True, default=_default("match_host"),
                                  help_text=_help("match_host"))
    methods = models.JSONField(default=list, help_text=_help("methods"))
    protocol = models.CharField(max_length=16, choices=PROTOCOL_CHOICES, default=_default("protocol"))
    internal_path = models.CharField(max_length=2048, blank=True, default=_default("internal_path"),
                                     help_text=_help("internal_path"))
    load_balancing_strategy = models.CharField(max_length=32, choices=STRATEGY_CHOICES,
                                               default=_default("load_balancing_strategy"))
    auth_required = models.BooleanField(default=_default("auth_required"))
    auth = models.CharField(max_length=8, choices=[(mode, mode) for mode in BY_NAME["auth"].choices],
                            default=_default("auth"), help_text=_help("auth"))
    connect_timeout_ms = models.PositiveIntegerField(default=_default("connect_timeout_ms"))
    read_timeout_ms = models.PositiveIntegerField(default=_default("read_timeout_ms"))
    total_timeout_ms = models.PositiveIntegerField(default=_default("total_timeout_ms"),
                                                   help_text=_help("total_timeout_ms"))
    preserve_host = models.BooleanField(default=_default("preserve_host"), help_text=_help("preserve_host"))
    enabled = models.BooleanField(default=_default("enabled"))
    priority = models.IntegerField(default=_default("priority"), help_text=_help("priority"))
    retry = _block_field("retry")
    health_check = _block_field("health_check")
    circuit_breaker = _block_field("circuit_breaker")
    request_transformation = _block_field("request_transformation")
    response_transformation = _block_field("response_transformation")
    rate_limit = _block_field("rate_limit")
    ai_policy = _block_field("ai_policy")
    plugins = _block_field("plugins")
    llm = _block_field("llm")
    cache = _block_field("cache")
    compression = _block_field("compression")
    cors = _block_field("cors")
    limits = _block_field("limits")
    ip_rules = _block_field("ip_rules")
    security_headers = _block_field("security_headers")
    jwt = _block_field("jwt")
    ftp = _block_field("ftp")
    websocket = _block_field("websocket")
    tls = _block_field("tls")
    abuse = _block_field("abuse")
    api_docs = _block_field("api_docs")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["enabled", "external_path"], name="route_enabled_path")]

    def __str__(self) -> str:
        return self.name


class Backend(models.Model):
    """One upstream server of a route: where requests go, how much of them, and how to check it; with
    `discovery`, a DNS name the data plane resolves to the servers (protocols.discovery); with `tls`, how its
    certificate is verified."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="backends")
    scheme = models.CharField(max_length=8, default="http")
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    weight = models.PositiveIntegerField(default=1)
    health_check_path = models.CharField(max_length=2048, blank=True, null=True)
    enabled = models.BooleanField(default=True)
    description = models.CharField(
        max_length=500, blank=True, default="",
        help_text="What this backend is for, in a sentence: AI routing (content_analysis) shows it to the model.")
    discovery = models.JSONField(
        null=True, blank=True,
        help_text='Find the addresses by DNS, like {"type": "a"} (every A/AAAA address of the host, at the port) '
                  'or {"type": "srv", "interval_s": 5, "resolver": "127.0.0.1:8600"} (the host is an SRV name); '
                  "null: the host as it is.")
    tls = models.JSONField(
        null=True, blank=True,
        help_text='TLS options of an https or wss backend, like {"ca": "-----BEGIN CERTIFICATE-----...", '
                  '"server_name": "api.internal", "verify": true}; null: the system\'s CAs, the host as the name, '
                  "verified.")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["route_id", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(port__gte=1, port__lte=65535), name="backend_port_range",
                violation_error_message="The port must be between 1 and 65535.",
            ),
        ]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.url


class GatewaySettings(models.Model):
    """Gateway-wide policy blocks imported from or exported to the earlier gateway's config (one row).

    `jwt`, `rate_limit` and `ai` are the earlier gateway's; `cors`, `limits`, `ip_rules` and `security_headers`
    are Rusta's request guards, used by every route without its own block of that name; `plugins` the plugins
    every http route runs.
    """

    jwt = models.JSONField(null=True, blank=True)
    rate_limit = models.JSONField(null=True, blank=True)
    ai = models.JSONField(null=True, blank=True)
    # Request guards for every route that has no block of the same name (protocols.guards).
    cors = models.JSONField(null=True, blank=True)
    limits = models.JSONField(null=True, blank=True)
    ip_rules = models.JSONField(null=True, blank=True)
    security_headers = models.JSONField(null=True, blank=True)
    # Installed plugins every http route runs (a list; protocols.plugins), before or among the route's own.
    plugins = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "gateway settings"
        verbose_name_plural = "gateway settings"

    def __str__(self) -> str:
        return "Gateway settings"


class ConfigState(models.Model):
    """The configuration's version: bumped by every change, polled by every gateway process (one row).

    `health_version` is bumped whenever a backend's effective health changes (a probe crossing a threshold, an
    operator override), so the same one-row poll tells a gateway process to reload its health overlay.
    `cache_purge_id` likewise tells it that cache purges were requested (routes.cache_purges).
    `background_ran_at` is the background work's heartbeat (metrics.background), read by the same poll, so that
    /health, /ready and the admin can say when it is missing.
    """

    version = models.PositiveBigIntegerField(default=0)
    health_version = models.PositiveBigIntegerField(default=0)
    cache_purge_id = models.PositiveBigIntegerField(
        default=0, help_text="Id of the latest CachePurge: gateway processes apply the ones they have not seen.")
    changed_at = models.DateTimeField(auto_now=True)
    background_ran_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a background task (health checks, rollups, retention) last ran; written every few seconds.")

    def __str__(self) -> str:
        return f"version {self.version}"


class AuditEntry(models.Model):
    """Who changed what configuration and when, with the fields that changed."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        DELETE = "delete", "Deleted"
        IMPORT = "import", "Imported"
        RELOAD = "reload", "Reloaded"
        OVERRIDE = "override", "Health override"
        PURGE = "purge", "Cache purge"
        APPLY = "apply", "Applied"  # manage.py config apply and /api/config/apply/: one row for the whole change

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, help_text="Kept when the user is deleted.")
    source = models.CharField(max_length=16, help_text="admin, api, import or command.")
    action = models.CharField(max_length=16, choices=Action.choices)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64, blank=True, default="")
    object_repr = models.CharField(max_length=200, blank=True, default="")
    changes = models.JSONField(default=dict, help_text="Field name to [before, after]; secrets redacted.")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_type} {self.object_repr}"


class CachePurge(models.Model):
    """A request to drop cached responses: all of them, one route's, or one URL key's (optionally of one route).

    Every gateway process applies each purge once to its own cache (or to the shared Redis store), when its table
    watcher sees `ConfigState.cache_purge_id` move; rows older than a day are deleted as new ones come.
    """

    route = models.CharField(max_length=100, blank=True, default="", help_text="Route name; empty: every route.")
    key = models.CharField(max_length=4200, blank=True, default="",
                           help_text="URL key like 'GET example.com/items?a=1'; empty: every URL.")
    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        what = self.key or "all URLs"
        return f"purge {what} of {self.route or 'every route'}"
