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


class ClientWindow(models.Model):
    """What one client did on one route during one window, as one gateway process counted it (the abuse block).

    `client` names the caller: `consumer:<name>`, `sub:<JWT subject>`, `key:<hash of the API key>` or
    `ip:<address>`. Several processes' rows of one (start, route, client) add up, except the distinct paths and
    addresses, which are merged from their hashes (`path_hashes`, `address_hashes`, each capped; `distinct_paths`
    and `distinct_addresses` are each process's exact count, so a merge takes the larger of the union and the max).
    Written by the workers' flushers (protocols.abuse counts, metrics.abuse stores), read by the detection task.
    """

    start = models.DateTimeField()
    window_s = models.FloatField(default=10.0)
    route = models.CharField(max_length=200)
    client = models.CharField(max_length=200)
    source = models.CharField(max_length=100, help_text="The gateway process that counted these requests.")
    requests = models.BigIntegerField(default=0)
    errors_4xx = models.BigIntegerField(default=0)
    auth_failures = models.BigIntegerField(default=0, help_text="401 and 403 answers.")
    not_found = models.BigIntegerField(default=0, help_text="404 answers.")
    rate_limited = models.BigIntegerField(default=0, help_text="429 answers.")
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    distinct_paths = models.IntegerField(default=0)
    path_hashes = models.JSONField(default=list)
    distinct_addresses = models.IntegerField(default=0)
    address_hashes = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "route", "client", "source"],
                                               name="clientwindow_one_row_per_writer",
                                               violation_error_message="One row per window, route, client and "
                                                                       "writer.")]
        indexes = [models.Index(fields=["start"], name="clientwindow_start"),
                   models.Index(fields=["route", "start"], name="clientwindow_route")]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S} {self.client} on {self.route} ({self.source})"


class VerdictKind(models.TextChoices):
    BURST = "burst", "Burst"
    CREDENTIAL_STUFFING = "credential_stuffing", "Credential stuffing"
    ENUMERATION = "enumeration", "Enumeration"
    SCRAPING = "scraping", "Scraping"
    TOKEN_SHARING = "token_sharing", "Token sharing"
    ANOMALY = "anomaly", "Anomaly"


class VerdictAction(models.TextChoices):
    SHADOW = "shadow", "Recorded only"
    LOWER = "lower", "Limit lowered"
    BLOCK = "block", "Blocked"


class Verdict(models.Model):
    """The detection task's judgement of one client on one route: which features deviated, by how much against
    which baseline, the score and the model that gave it, and what the gateway does about it until `expires_at`.

    `features` is a list of {"name", "value", "baseline", "population", "score"}. A verdict is in force while
    `expires_at` is in the future and `lifted_at` is null; the gateway processes read those (never per request).
    """

    created_at = models.DateTimeField(auto_now_add=True)
    route = models.CharField(max_length=200)
    client = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=VerdictKind.choices)
    features = models.JSONField(default=list)
    score = models.FloatField()
    model_version = models.CharField(max_length=100)
    action = models.CharField(max_length=16, choices=VerdictAction.choices)
    factor = models.FloatField(null=True, blank=True, help_text="The lowered limit's share of the normal one.")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    expires_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True, default="")
    lift_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["expires_at"], name="verdict_expires"),
                   models.Index(fields=["route", "client"], name="verdict_client")]

    def __str__(self) -> str:
        return f"verdict {self.pk}: {self.client} on {self.route}, {self.kind}, {self.action}"


class ClientLimit(models.Model):
    """A personalized limit: what one client may send on one route, learned from its own normal use (a route's
    abuse block with `personalized_limits`), applied by the gateway in place of the route's limit for it."""

    route = models.CharField(max_length=200)
    client = models.CharField(max_length=200)
    limit = models.PositiveIntegerField(help_text="Requests per window_s.")
    window_s = models.FloatField()
    learned_from = models.PositiveIntegerField(help_text="How many of the client's windows it was learned from.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route", "client"], name="clientlimit_one_per_client",
                                               violation_error_message="One limit per route and client.")]

    def __str__(self) -> str:
        return f"{self.client} on {self.route}: {self.limit} per {self.window_s:g} s"


class LearnedOperation(models.Model):
    """The shapes one route's sampled traffic showed for one method, path template and status (the route's
    `api_docs` block): query parameters, path parameters, request and response bodies, merged across samples and
    across the gateway processes that wrote them. Shapes only, never values (protocols.apidocs.shapes).

    `shape` is protocols.apidocs.learn's operation record; metrics.apidocs.openapi builds the OpenAPI document.
    """

    route = models.CharField(max_length=200)
    method = models.CharField(max_length=16)
    path = models.CharField(max_length=1000, help_text="The path template, like /users/{id}.")
    status = models.PositiveSmallIntegerField()
    samples = models.BigIntegerField(default=0)
    shape = models.JSONField(default=dict)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route", "method", "path", "status"],
                                               name="learnedoperation_one_per_status",
                                               violation_error_message="One row per route, method, path template "
                                                                       "and status.")]
        indexes = [models.Index(fields=["route"], name="learnedoperation_route")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} on {self.route} ({self.samples} samples)"
