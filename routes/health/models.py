"""Backend health as the control plane sees it: current state per backend, recent probes and state changes.

Declared here and imported by routes.models, so Django files them under the routes app (routes_backendhealth,
routes_healthprobe, routes_healthevent). Backends are named by string: routes.models imports this module.
"""
from __future__ import annotations

from django.db import models

from routes.health.probes import reason_text


class HealthState(models.TextChoices):
    """What a backend's probes concluded; `unknown` before the first verdict (it counts as healthy)."""

    HEALTHY = "healthy", "Healthy"
    UNHEALTHY = "unhealthy", "Unhealthy"
    UNKNOWN = "unknown", "Unknown"


class Override(models.TextChoices):
    """An operator's decision that wins over the probes."""

    NONE = "none", "None"
    UP = "up", "Forced up"
    DOWN = "down", "Forced down"


class ProbeReason(models.TextChoices):
    """Why a probe ended as it did; `status` covers every answer, good or bad."""

    STATUS = "status", "Status"
    TIMEOUT = "timeout", "Timeout"
    REFUSED = "refused", "Connection refused"
    RESET = "reset", "Connection reset"
    INVALID = "invalid", "Invalid response"
    ERROR = "error", "Error"
    GRPC_SERVING = "grpc_serving", "gRPC: serving"
    GRPC_NOT_SERVING = "grpc_not_serving", "gRPC: not serving"
    GRPC_STATUS = "grpc_status", "gRPC: error status"
    GRPC_NO_MESSAGE = "grpc_no_message", "gRPC: no answer message"


class BackendHealth(models.Model):
    """One backend's active-check state: what its probes concluded, and any operator override on top.

    `state` changes only when consecutive probe results cross the route's thresholds; `reason` says why it is
    in that state. The effective health the gateways use is `effective`: an override wins over the probes, and
    a backend never probed counts as healthy.
    """

    backend = models.OneToOneField("routes.Backend", on_delete=models.CASCADE, primary_key=True, related_name="health")
    state = models.CharField(max_length=16, choices=HealthState.choices, default=HealthState.UNKNOWN)
    reason = models.CharField(max_length=200, blank=True, default="")
    consecutive_successes = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_probe_at = models.DateTimeField(null=True, blank=True, help_text="When the latest probe started.")
    last_change_at = models.DateTimeField(null=True, blank=True, help_text="When the state last changed.")
    override = models.CharField(max_length=8, choices=Override.choices, default=Override.NONE)
    override_by = models.CharField(max_length=150, blank=True, default="")
    override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "backend health"
        verbose_name_plural = "backend health"
        ordering = ["backend_id"]

    def __str__(self) -> str:
        return f"{self.backend_id}: {self.state}"

    @staticmethod
    def effective_of(state: str, override: str) -> bool:
        """The one rule for whether a backend gets traffic: override up or down wins, else not unhealthy."""
        if override == Override.UP:
            return True
        if override == Override.DOWN:
            return False
        return state != HealthState.UNHEALTHY

    @property
    def effective(self) -> bool:
        return self.effective_of(self.state, self.override)


class HealthProbe(models.Model):
    """One active health probe of a backend and its outcome; only the latest ones per backend are kept."""

    backend = models.ForeignKey("routes.Backend", on_delete=models.CASCADE, related_name="health_probes")
    at = models.DateTimeField(help_text="When the probe started.")
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The HTTP status; for a gRPC probe that got an answer, the gRPC status "
                                         "(grpc_status) or the serving status (grpc_serving, grpc_not_serving).")
    latency_ms = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=16, choices=ProbeReason.choices)
    detail = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["backend", "-id"], name="healthprobe_backend_latest")]

    def __str__(self) -> str:
        return f"{self.backend_id} {self.text}"

    @property
    def text(self) -> str:
        """`status 503`, `grpc_status_12`, `timeout`...: the words used in state changes and the admin."""
        return reason_text(self.reason, self.status_code)


class HealthEvent(models.Model):
    """A change of a backend's health: a state change from probes, or an operator setting or clearing an override.

    For `probe` and `reset` events `from_state`/`to_state` are health states; for `override` events they are
    override values (none, up, down).
    """

    class Source(models.TextChoices):
        PROBE = "probe", "Probe"
        OVERRIDE = "override", "Override"
        RESET = "reset", "Check removed"

    backend = models.ForeignKey("routes.Backend", on_delete=models.CASCADE, related_name="health_events")
    at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=200, blank=True, default="")
    actor_name = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["backend", "-id"], name="healthevent_backend_latest")]

    def __str__(self) -> str:
        return f"{self.backend_id} {self.from_state} -> {self.to_state} ({self.reason})"
