"""Backend health as the control plane sees it: current state per backend, recent probes and state changes."""
from __future__ import annotations

from django.db import models

from routes.models import Backend


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


class BackendHealth(models.Model):
    """One backend's active-check state: what its probes concluded, and any operator override on top.

    `state` changes only when consecutive probe results cross the route's thresholds; `reason` says why it is
    in that state. The effective health the gateways use is `effective`: an override wins over the probes, and
    a backend never probed counts as healthy.
    """

    backend = models.OneToOneField(Backend, on_delete=models.CASCADE, primary_key=True, related_name="health")
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

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="health_probes")
    at = models.DateTimeField(help_text="When the probe started.")
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
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
        """`status 503`, `timeout`, `refused`...: the words used in state changes and the admin."""
        return f"status {self.status_code}" if self.reason == ProbeReason.STATUS else self.reason


class HealthEvent(models.Model):
    """A change of a backend's health: a state change from probes, or an operator setting or clearing an override.

    For `probe` and `reset` events `from_state`/`to_state` are health states; for `override` events they are
    override values (none, up, down).
    """

    class Source(models.TextChoices):
        PROBE = "probe", "Probe"
        OVERRIDE = "override", "Override"
        RESET = "reset", "Check removed"

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="health_events")
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


# --- Time series of the traffic: raw 10-second points, rollups, retention and the rollups' progress ----------

class Resolution(models.TextChoices):
    """The resolutions of the stored series: raw 10-second points and their rollups."""

    RAW = "10s", "10 seconds (raw)"
    MINUTE = "1m", "1 minute"
    FIVE_MINUTES = "5m", "5 minutes"
    HOUR = "1h", "1 hour"
    DAY = "1d", "1 day"


RESOLUTION_SECONDS = {"10s": 10, "1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
# Each rollup is computed from the next finer resolution.
ROLLUP_SOURCE = {"1m": "10s", "5m": "1m", "1h": "5m", "1d": "1h"}
# How long each resolution is kept unless the operator says otherwise (None: forever).
DEFAULT_RETENTION_DAYS: dict[str, int | None] = {"10s": 1, "1m": 7, "5m": 30, "1h": 365, "1d": None}


class Aggregate(models.Model):
    """Traffic of one (route, backend) over one time bucket: counts, error classes, latency and bytes.

    `route` is "" for requests that matched no route, `backend` "" for requests that reached no backend.
    `buckets` holds the count per latency bucket (metrics.recorder.LATENCY_BOUNDS, then +Inf), so quantiles can
    be estimated at any resolution; durations are in seconds, as seen by the client.
    """

    start = models.DateTimeField()
    route = models.CharField(max_length=200, blank=True, default="")
    backend = models.CharField(max_length=300, blank=True, default="")
    count = models.BigIntegerField(default=0)
    errors_4xx = models.BigIntegerField(default=0)
    errors_5xx = models.BigIntegerField(default=0)
    errors_gateway = models.BigIntegerField(default=0, help_text="Requests the gateway answered with its own "
                                                                 "error (upstream failure, no backend...).")
    duration_sum = models.FloatField(default=0.0)
    duration_min = models.FloatField(null=True, blank=True)
    duration_max = models.FloatField(null=True, blank=True)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    buckets = models.JSONField(default=list)

    class Meta:
        abstract = True


class RawPoint(Aggregate):
    """A 10-second point as one writer saw it: a gateway process (database store) or the Redis ingest.

    Writers replace their own row (never increment it), so a flush that is retried cannot count twice.
    """

    source = models.CharField(max_length=100, help_text="The gateway process, or `redis` for ingested points.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "route", "backend", "source"],
                                               name="rawpoint_one_row_per_writer",
                                               violation_error_message="One row per bucket, series and writer.")]
        indexes = [models.Index(fields=["start"], name="rawpoint_start")]

    def __str__(self) -> str:
        return f"10s {self.start:%Y-%m-%d %H:%M:%S} {self.route}/{self.backend} ({self.source})"


class RollupPoint(Aggregate):
    """A point of a rolled-up series (1 min, 5 min, 1 h, 1 d), recomputed whole from the finer resolution."""

    resolution = models.CharField(max_length=3, choices=[c for c in Resolution.choices if c[0] != "10s"])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resolution", "start", "route", "backend"],
                                               name="rollup_one_row_per_bucket",
                                               violation_error_message="One row per resolution, bucket and series.")]
        indexes = [models.Index(fields=["resolution", "start"], name="rollup_resolution_start")]

    def __str__(self) -> str:
        return f"{self.resolution} {self.start:%Y-%m-%d %H:%M} {self.route}/{self.backend}"


class RetentionPolicy(models.Model):
    """How long the points of one resolution are kept; the operator edits these rows in the admin.

    Raw points are never deleted before the 1-minute rollup has used them, whatever the policy says.
    """

    resolution = models.CharField(max_length=3, choices=Resolution.choices, unique=True)
    keep_days = models.PositiveIntegerField(null=True, blank=True,
                                            help_text="Days to keep; empty keeps the points forever.")

    class Meta:
        verbose_name = "retention policy"
        verbose_name_plural = "retention policies"
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=models.Q(keep_days__isnull=True) | models.Q(keep_days__gte=1),
                                              name="retention_at_least_one_day",
                                              violation_error_message="Keep points for at least one day.")]

    def __str__(self) -> str:
        kept = "forever" if self.keep_days is None else f"{self.keep_days} days"
        return f"{self.get_resolution_display()}: {kept}"


class FillState(models.Model):
    """How far the rollup of one resolution has got: every bucket starting before `filled_until` is complete.

    A rollup run resumes from here; it recomputes whole buckets and moves the marker in the same transaction,
    so a crash or a retry never counts a point twice.
    """

    resolution = models.CharField(max_length=3, choices=Resolution.choices, unique=True)
    filled_until = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.resolution} filled until {self.filled_until:%Y-%m-%d %H:%M:%S}"
