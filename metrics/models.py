"""The traffic history: raw 10-second points, their rollups, how long each resolution is kept, the rollups' progress.

Backend health (active checks) is routing state: routes.health.models."""
from __future__ import annotations

from django.db import models


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
    `buckets` holds the count per latency bucket (protocols.recorder.LATENCY_BOUNDS, then +Inf), so quantiles can
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


class ConsumerAggregate(models.Model):
    """Traffic of one consumer on one route over one time bucket: counts, error classes and latency.

    Kept apart from Aggregate (not a `consumer` column on it) so that every reader of the route and backend
    series keeps summing all its rows; a consumer's row is smaller (no backend, bytes or gateway errors).
    `route` is "" for a consumer's requests that matched no route (rare: credentials are checked per route).
    """

    start = models.DateTimeField()
    consumer = models.CharField(max_length=100)
    route = models.CharField(max_length=200, blank=True, default="")
    count = models.BigIntegerField(default=0)
    errors_4xx = models.BigIntegerField(default=0)
    errors_5xx = models.BigIntegerField(default=0)
    duration_sum = models.FloatField(default=0.0)
    duration_min = models.FloatField(null=True, blank=True)
    duration_max = models.FloatField(null=True, blank=True)
    buckets = models.JSONField(default=list)

    class Meta:
        abstract = True


class ConsumerRawPoint(ConsumerAggregate):
    """A consumer's 10-second point as one writer saw it (a gateway process, or `redis`); replaced, never added to."""

    source = models.CharField(max_length=100, help_text="The gateway process, or `redis` for ingested points.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "consumer", "route", "source"],
                                               name="consumer_rawpoint_one_row_per_writer",
                                               violation_error_message="One row per bucket, consumer, route and "
                                                                       "writer.")]
        indexes = [models.Index(fields=["start"], name="consumer_rawpoint_start"),
                   models.Index(fields=["consumer", "start"], name="consumer_rawpoint_consumer")]

    def __str__(self) -> str:
        return f"10s {self.start:%Y-%m-%d %H:%M:%S} {self.consumer} on {self.route} ({self.source})"


class ConsumerRollupPoint(ConsumerAggregate):
    """A consumer's rolled-up point, recomputed whole with the route series of the same resolution and bucket."""

    resolution = models.CharField(max_length=3, choices=[c for c in Resolution.choices if c[0] != "10s"])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resolution", "start", "consumer", "route"],
                                               name="consumer_rollup_one_row_per_bucket",
                                               violation_error_message="One row per resolution, bucket, consumer "
                                                                       "and route.")]
        indexes = [models.Index(fields=["resolution", "start"], name="consumer_rollup_resolution"),
                   models.Index(fields=["resolution", "consumer", "start"], name="consumer_rollup_consumer")]

    def __str__(self) -> str:
        return f"{self.resolution} {self.start:%Y-%m-%d %H:%M} {self.consumer} on {self.route}"


class LlmSpendAggregate(models.Model):
    """What one consumer spent on one LLM route and model over one time bucket: requests, tokens by kind and cost.

    `cost_micros` is in integer micro-units of the route's budget currency, so sums are exact at every resolution.
    `model` is "" for requests no target answered (refusals), `consumer` "" for requests without one.
    `input_tokens` is the whole prompt (cached tokens included), as on /metrics.
    """

    start = models.DateTimeField()
    route = models.CharField(max_length=200)
    model = models.CharField(max_length=200, blank=True, default="")
    consumer = models.CharField(max_length=100, blank=True, default="")
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class LlmSpendRawPoint(LlmSpendAggregate):
    """An LLM spend 10-second point as one writer saw it (a gateway process, or `redis`); replaced, never added to."""

    source = models.CharField(max_length=100, help_text="The gateway process, or `redis` for ingested points.")

    class Meta:
        verbose_name = "LLM spend raw point"
        constraints = [models.UniqueConstraint(fields=["start", "route", "model", "consumer", "source"],
                                               name="llm_spend_rawpoint_one_row_per_writer",
                                               violation_error_message="One row per bucket, route, model, consumer "
                                                                       "and writer.")]
        indexes = [models.Index(fields=["start"], name="llm_spend_rawpoint_start")]

    def __str__(self) -> str:
        return f"10s {self.start:%Y-%m-%d %H:%M:%S} {self.consumer} on {self.route}/{self.model} ({self.source})"


class LlmSpendRollupPoint(LlmSpendAggregate):
    """A rolled-up LLM spend point, recomputed whole with the route series of the same resolution and bucket."""

    resolution = models.CharField(max_length=3, choices=[c for c in Resolution.choices if c[0] != "10s"])

    class Meta:
        verbose_name = "LLM spend rollup point"
        constraints = [models.UniqueConstraint(fields=["resolution", "start", "route", "model", "consumer"],
                                               name="llm_spend_rollup_one_row_per_bucket",
                                               violation_error_message="One row per resolution, bucket, route, "
                                                                       "model and consumer.")]
        indexes = [models.Index(fields=["resolution", "start"], name="llm_spend_rollup_resolution")]

    def __str__(self) -> str:
        return f"{self.resolution} {self.start:%Y-%m-%d %H:%M} {self.consumer} on {self.route}/{self.model}"


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


class LlmSpend(models.Model):
    """What one LLM token limit or budget counter (a day or longer) spent in one window, kept across restarts.

    Written from the counters' store (metrics.llm_spend): by each gateway process on the embedded default, by the
    `metrics.persist_llm_spend` task from Redis; read back when a gateway process starts, to raise its counters.
    `used` only grows: a write keeps the larger of the stored and the new value, so a retried or older write
    never lowers it, and several writers of one counter (workers on the embedded default) leave the largest.
    """

    # A counter key, `<policy>|<meter>|<scope>` (protocols.llm.budgets.config): `route:chat|tokens:day|consumer=x`.
    key = models.TextField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    used = models.BigIntegerField(help_text="Settled usage: tokens, or micro-units of the budget's currency.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LLM spend"
        verbose_name_plural = "LLM spend"
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="llmspend_one_row_per_window",
                                               violation_error_message="One row per counter and window.")]
        indexes = [models.Index(fields=["window_end"], name="llmspend_window_end")]

    def __str__(self) -> str:
        return f"{self.key} from {self.window_start:%Y-%m-%d}: {self.used}"
