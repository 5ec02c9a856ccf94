"""The traffic history API: `GET /api/metrics/` lists the series, `GET /api/metrics/history/` reads one (a route's,
a backend's, a consumer's or the whole gateway's), `GET /api/metrics/consumers/` sums each consumer's traffic."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from metrics import consumer_queries, queries
from metrics.models import RESOLUTION_SECONDS
from routes.api.permissions import RolePermission
from routes.api.serializers import ErrorsSerializer

DEFAULT_SUMMARY_RANGE = timedelta(hours=1)


@extend_schema_field(OpenApiTypes.STR)
class FlexibleDateTimeField(serializers.Field):
    """An ISO 8601 datetime (UTC when it has no offset) or a Unix time in seconds."""

    default_error_messages = {"invalid": "Not a date: use ISO 8601 (2026-11-26T12:00:00Z) or Unix seconds."}

    def to_internal_value(self, data: Any) -> datetime:
        text = str(data).strip()
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError, OSError):
            pass
        try:
            parsed = parse_datetime(text.replace(" ", "T"))
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        assert parsed is not None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class HistoryParamsSerializer(serializers.Serializer):
    """The query string of the history API."""

    name = serializers.ChoiceField(choices=queries.NAMES, help_text="requests, latency, errors or bytes.")
    interval = serializers.ChoiceField(choices=list(RESOLUTION_SECONDS), default="1m",
                                       help_text="10s, 1m, 5m, 1h or 1d.")
    route = serializers.CharField(required=False, help_text="Only this route's traffic.")
    backend = serializers.CharField(required=False, help_text="Only this backend's (host:port) traffic.")
    consumer = serializers.CharField(required=False, help_text="Only this consumer's traffic (requests, latency or "
                                                               "errors; with `route`, on that route only).")
    start = FlexibleDateTimeField(required=False, help_text="Default: 120 intervals before `end`.")
    end = FlexibleDateTimeField(required=False, help_text="Default: the end of the current interval.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "consumer" in attrs:
            # A consumer's points are kept per route only: no backend split, no bytes.
            if "backend" in attrs:
                raise serializers.ValidationError({"backend": [
                    "A consumer's history is kept per route, not per backend: leave out backend or consumer."]})
            if attrs["name"] not in queries.CONSUMER_NAMES:
                raise serializers.ValidationError({"name": [
                    f"A consumer's history has {', '.join(queries.CONSUMER_NAMES)}, not {attrs['name']}."]})
        interval = attrs["interval"]
        start, end = interval_range(attrs)
        attrs["query"] = within_points(queries.HistoryQuery(attrs["name"], interval, start, end, attrs.get("route"),
                                                            attrs.get("backend"), attrs.get("consumer")), interval)
        return attrs


class ConsumersParamsSerializer(serializers.Serializer):
    """The query string of the consumers' summary."""

    start = FlexibleDateTimeField(required=False, help_text="Default: one hour before `end`.")
    end = FlexibleDateTimeField(required=False, help_text="Default: now.")
    top = serializers.IntegerField(required=False, default=consumer_queries.TOP_ROUTES, min_value=1, max_value=50,
                                   help_text="How many of each consumer's routes to list, busiest first (1-50).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["start"], attrs["end"] = summary_range(attrs)
        return attrs


def interval_range(attrs: dict[str, Any]) -> tuple[Any, Any]:
    """`start` and `end` of a series query: given, else 120 intervals ending at the current one (a `start` left
    out keeps that length before a given `end`); ValidationError when start is not before end."""
    default_start, default_end = queries.default_range(attrs["interval"], timezone.now())
    end = attrs.get("end") or default_end
    start = attrs.get("start") or (default_start if "end" not in attrs else end - (default_end - default_start))
    if start >= end:
        raise serializers.ValidationError({"start": ["start must be before end."]})
    return start, end


def summary_range(attrs: dict[str, Any]) -> tuple[Any, Any]:
    """`start` and `end` of a summary: given, else the hour before now; ValidationError when start is not first."""
    end = attrs.get("end") or timezone.now()
    start = attrs.get("start") or end - DEFAULT_SUMMARY_RANGE
    if start >= end:
        raise serializers.ValidationError({"start": ["start must be before end."]})
    return start, end


def within_points(query: Any, interval: str) -> Any:
    """`query` when it asks for at most MAX_POINTS points; else the 400 saying so at `interval`."""
    if query.point_count > queries.MAX_POINTS:
        raise serializers.ValidationError({"interval": [
            f"{query.point_count} points of {interval} between start and end; at most {queries.MAX_POINTS}: "
            "choose a longer interval or a shorter range."]})
    return query


class MetricsViewSet(viewsets.ViewSet):
    """The stored traffic history: raw 10-second points and their rollups."""

    permission_classes = [RolePermission]

    @extend_schema(summary="The stored series: names, routes, backends, resolutions and their retention",
                   responses={200: OpenApiResponse(description="The catalogue of series.")})
    def list(self, request: Request) -> Response:
        return Response(queries.series_catalog())

    @extend_schema(summary="Points of one series over a time range",
                   parameters=[HistoryParamsSerializer],
                   responses={200: OpenApiResponse(description="The points, oldest first."),
                              400: OpenApiResponse(ErrorsSerializer, description="A bad parameter, named.")})
    @action(detail=False, methods=["get"])
    def history(self, request: Request) -> Response:
        """Each point: `t` (bucket start), `count`, and by name: `sum`, `min`, `max`, `avg`, `p50`, `p95`, `p99`
        (latency, seconds); `errors_4xx`, `errors_5xx`, `ratio` (errors); `bytes_in`, `bytes_out` (bytes)."""
        params = HistoryParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query: queries.HistoryQuery = params.validated_data["query"]
        body: dict[str, Any] = {
            "name": query.name, "interval": query.interval, "route": query.route, "backend": query.backend,
            "start": query.start, "end": query.end, "points": queries.history(query),
        }
        if query.consumer is not None:
            body["consumer"] = query.consumer
        return Response(body)

    @extend_schema(summary="Each consumer's traffic over a time range: requests, errors, latency, busiest routes",
                   parameters=[ConsumersParamsSerializer],
                   responses={200: OpenApiResponse(description="The consumers, busiest first."),
                              400: OpenApiResponse(ErrorsSerializer, description="A bad parameter, named.")})
    @action(detail=False, methods=["get"])
    def consumers(self, request: Request) -> Response:
        """Each consumer with traffic in [start, end): `requests`, `rate` (req/s), `errors_4xx`, `errors_5xx`,
        `error_ratio` (4xx and 5xx over requests), `ratio_5xx`, `p50`/`p95`/`p99` (seconds), `routes` (how many it
        called) and `top_routes` (the busiest, with the same figures)."""
        params = ConsumersParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        start, end = params.validated_data["start"], params.validated_data["end"]
        return Response({"start": start, "end": end,
                         "consumers": consumer_queries.consumer_summary(start, end, params.validated_data["top"])})
