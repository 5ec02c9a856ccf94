"""The cache endpoint of the management API: purge cached answers, on every gateway process."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from routes import cache_purges, services
from routes.api.permissions import IsStaffPermission


class CanPurgeCache(BasePermission):
    """Operators only: staff who may change routes (a purge changes what every client gets next)."""

    message = "Purging the cache needs permission to change routes."

    def has_permission(self, request: Request, view: Any) -> bool:
        user: Any = request.user  # AnonymousUser or a user with PermissionsMixin: both have has_perm
        return bool(user and user.has_perm("routes.change_route"))


class PurgeRequestSerializer(serializers.Serializer):
    """What to purge: nothing given purges everything; `route` and `key` narrow it down (both: that URL of that
    route)."""

    route = serializers.CharField(required=False, help_text="A route name: only its cached answers.")
    key = serializers.CharField(
        required=False,
        help_text="A URL key, `GET example.com/items?a=1` (the method defaults to GET; a full URL works too; "
                  "query parameters in any order). Removes every variant of that URL.")


class PurgeSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The purge's id; processes apply purges in id order.")
    route = serializers.CharField(allow_null=True)
    key = serializers.CharField(allow_null=True, help_text="The URL key as the cache writes it.")


class CacheViewSet(viewsets.ViewSet):
    """The response cache of every gateway process."""

    permission_classes = [IsStaffPermission, CanPurgeCache]
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Purge cached answers on every gateway process",
        description="Applied by each process within its reload interval (RUSTA_RELOAD_INTERVAL), like a route "
                    "change. Answers 202 with the purge it recorded.",
        request=PurgeRequestSerializer,
        responses={202: PurgeSerializer, 400: OpenApiResponse(description="Unknown route or unreadable key.")},
    )
    @action(detail=False, methods=["post"])
    def purge(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise services.ConfigError({"": ['Send a JSON object: {}, {"route": "name"} or {"key": "GET host/path"}.']})
        unknown = sorted(set(data) - {"route", "key"})
        if unknown:
            raise services.ConfigError({key: ["Unknown key; use route and/or key."] for key in unknown})
        purge = cache_purges.request_purge(route=data.get("route"), key=data.get("key"), actor=request.user,
                                           source="api")
        return Response({"id": purge.pk, "route": purge.route or None, "key": purge.key or None},
                        status=status.HTTP_202_ACCEPTED)
