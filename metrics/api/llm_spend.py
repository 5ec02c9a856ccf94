"""The LLM spend API: `GET /api/metrics/llm/spend/` reads cost and tokens over time, `GET
/api/metrics/llm/spend/summary/` sums them per consumer and model over a range (metrics.llm_spend_queries)."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from metrics import llm_spend_queries
from metrics.api.series import FlexibleDateTimeField, interval_range, summary_range, within_points
from metrics.models import RESOLUTION_SECONDS
from routes.api.permissions import RolePermission
from routes.api.serializers import ErrorsSerializer


class SpendParamsSerializer(serializers.Serializer):
    """The query string of the spend series."""

    interval = serializers.ChoiceField(choices=list(RESOLUTION_SECONDS), default="1m",
                                       help_text="10s, 1m, 5m, 1h or 1d.")
    route = serializers.CharField(required=False, help_text="Only this LLM route's spend.")
    model = serializers.CharField(required=False, allow_blank=True,
                                  help_text="Only this model's spend (empty: requests no target answered).")
    consumer = serializers.CharField(required=False, allow_blank=True,
                                     help_text="Only this consumer's spend (empty: requests without one).")
    by = serializers.ChoiceField(choices=llm_spend_queries.SPLITS, required=False,
                                 help_text="Also answer one series per consumer, model or route.")
    start = FlexibleDateTimeField(required=False, help_text="Default: 120 intervals before `end`.")
    end = FlexibleDateTimeField(required=False, help_text="Default: the end of the current interval.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        interval = attrs["interval"]
        start, end = interval_range(attrs)
        attrs["query"] = within_points(llm_spend_queries.SpendQuery(
            interval, start, end, attrs.get("route"), attrs.get("model"), attrs.get("consumer"), attrs.get("by")),
            interval)
        return attrs


class SpendSummaryParamsSerializer(serializers.Serializer):
    """The query string of the spend summary."""

    start = FlexibleDateTimeField(required=False, help_text="Default: one hour before `end`.")
    end = FlexibleDateTimeField(required=False, help_text="Default: now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["start"], attrs["end"] = summary_range(attrs)
        return attrs


class LlmSpendViewSet(viewsets.ViewSet):
    """What LLM routes cost over time, from the stored spend history (exact: summed in micro-units)."""

    permission_classes = [RolePermission]

    @extend_schema(summary="LLM requests, tokens and cost over a time range",
                   parameters=[SpendParamsSerializer],
                   responses={200: OpenApiResponse(description="The points, oldest first."),
                              400: OpenApiResponse(ErrorsSerializer, description="A bad parameter, named.")})
    def list(self, request: Request) -> Response:
        """Each point: `t` (bucket start), `requests`, `input_tokens` (the whole prompt, cached included),
        `output_tokens`, `cached_input_tokens`, `cost` (a decimal string in the route's budget currency, exact)
        and `cost_micros` (the same in integer micro-units). With `by`, `series` has one list per consumer,
        model or route, most expensive first."""
        params = SpendParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query: llm_spend_queries.SpendQuery = params.validated_data["query"]
        body = {"interval": query.interval, "start": query.start, "end": query.end, "route": query.route,
                "model": query.model, "consumer": query.consumer, "by": query.by,
                **llm_spend_queries.spend_points(query)}
        return Response(body)

    @extend_schema(summary="Each consumer's LLM spend per model over a time range",
                   parameters=[SpendSummaryParamsSerializer],
                   responses={200: OpenApiResponse(description="The rows, most expensive first, and the total."),
                              400: OpenApiResponse(ErrorsSerializer, description="A bad parameter, named.")})
    @action(detail=False, methods=["get"])
    def summary(self, request: Request) -> Response:
        """`rows`: per consumer and model, `requests`, the tokens by kind, `cost` and `cost_micros`; `total`: the
        same over every row."""
        params = SpendSummaryParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        start, end = params.validated_data["start"], params.validated_data["end"]
        return Response({"start": start, "end": end, **llm_spend_queries.spend_summary(start, end)})
