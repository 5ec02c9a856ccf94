"""The learned API docs of a route: `GET /api/routes/{id}/learned-openapi/` answers the OpenAPI 3 document built
from its sampled traffic, `GET /api/routes/{id}/learned-openapi/drift/` its drift from the document declared in
its `api_docs.openapi` (metrics.apidocs)."""
from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.apidocs.drift import KINDS, drift
from metrics.apidocs.openapi import document_for
from routes.api.permissions import RolePermission
from routes.models import Route

ROUTE_KEY = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH,
                             description="The route's numeric id, or its name.")
DRIFT = inline_serializer("LearnedDrift", {
    "route": serializers.CharField(),
    "declared": serializers.BooleanField(help_text="Whether the route's api_docs block declares a document."),
    "counts": serializers.DictField(child=serializers.IntegerField(), help_text=f"Items per kind: {', '.join(KINDS)}."),
    "items": serializers.ListField(child=inline_serializer("LearnedDriftItem", {
        "kind": serializers.ChoiceField(choices=KINDS),
        "path": serializers.CharField(),
        "method": serializers.CharField(),
        "status": serializers.CharField(allow_null=True),
        "location": serializers.CharField(allow_null=True, help_text="query, request or response <status>."),
        "field": serializers.CharField(allow_null=True, help_text="The JSON field path, like backends[].host."),
        "detail": serializers.CharField(),
    })),
})


def route_of(key: str) -> Route:
    """The route a URL names by id (digits) or by name; 404 when there is none."""
    is_id = key.isascii() and key.isdigit() and len(key) <= 18
    route = Route.objects.filter(**({"pk": int(key)} if is_id else {"name": key})).only("name", "api_docs").first()
    if route is None:
        raise Http404(f"No route {key!r}.")
    return route


def declared_of(route: Route) -> dict[str, Any] | None:
    block = route.api_docs
    declared = block.get("openapi") if isinstance(block, dict) else None
    return declared if isinstance(declared, dict) else None


def drift_report(route: Route) -> dict[str, Any]:
    """The drift of a route's learned document from its declared one (no items when none is declared)."""
    declared = declared_of(route)
    items = drift(document_for(route.name), declared) if declared is not None else []
    counts = {kind: sum(1 for item in items if item["kind"] == kind) for kind in KINDS}
    return {"route": route.name, "declared": declared is not None, "counts": counts, "items": items}


class LearnedOpenApiView(APIView):
    """A route's OpenAPI 3 document learned from its sampled traffic (empty paths until samples arrive)."""

    permission_classes = [RolePermission]

    @extend_schema(summary="The OpenAPI 3 document learned from a route's traffic", parameters=[ROUTE_KEY],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, id: str) -> Response:
        return Response(document_for(route_of(id).name))


class LearnedDriftView(APIView):
    """A route's learned document against the one its api_docs block declares."""

    permission_classes = [RolePermission]

    @extend_schema(summary="How a route's traffic drifts from its declared OpenAPI document",
                   parameters=[ROUTE_KEY], responses={200: DRIFT})
    def get(self, request: Request, id: str) -> Response:
        return Response(drift_report(route_of(id)))
