"""The backend health API: `GET`/`POST /api/backends/{id}/health/`; reads the models, writes through
routes.health.services."""
from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from routes.api.health_serializers import BackendHealthSerializer, HealthOverrideSerializer
from routes.api.permissions import RolePermission
from routes.api.serializers import ErrorsSerializer
from routes.health import services
from routes.health.models import BackendHealth, HealthEvent, HealthProbe, Override
from routes.models import Backend
from routes.services import ConfigError

SHOWN = 20
BACKEND_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The backend's id.")


def health_document(backend: Backend) -> dict[str, Any]:
    """A backend's health with its latest probes and changes (an unknown state when it was never checked)."""
    health = BackendHealth.objects.filter(pk=backend.pk).first() or BackendHealth(backend=backend)
    return {
        "backend": backend.pk,
        "route": backend.route.name,
        "url": backend.url,
        "health_check_path": backend.health_check_path,
        "state": health.state,
        "reason": health.reason,
        "override": None if health.override == Override.NONE else health.override,
        "override_by": health.override_by,
        "override_at": health.override_at,
        "healthy": health.effective,
        "consecutive_successes": health.consecutive_successes,
        "consecutive_failures": health.consecutive_failures,
        "last_probe_at": health.last_probe_at,
        "last_change_at": health.last_change_at,
        "probes": HealthProbe.objects.filter(backend=backend).order_by("-id")[:SHOWN],
        "changes": HealthEvent.objects.filter(backend=backend).order_by("-id")[:SHOWN],
    }


class BackendHealthViewSet(viewsets.GenericViewSet):
    """Backends' health: what the probes concluded and the operator's override."""

    queryset = Backend.objects.select_related("route")
    permission_classes = [RolePermission]
    write_permission = "routes.change_backendhealth"  # the override
    parser_classes = [JSONParser]
    serializer_class = BackendHealthSerializer
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9]{1,18}"

    @extend_schema(methods=["GET"], summary="A backend's health, latest probes and state changes",
                   parameters=[BACKEND_ID], responses=BackendHealthSerializer)
    @extend_schema(methods=["POST"], summary="Force a backend up or down, or clear the override",
                   parameters=[BACKEND_ID], request=HealthOverrideSerializer,
                   responses={200: BackendHealthSerializer,
                              400: OpenApiResponse(ErrorsSerializer, description="Not up, down or null.")})
    @action(detail=True, methods=["get", "post"])
    def health(self, request: Request, id: str) -> Response:
        """POST `{"override": "up" | "down" | null}`; every gateway follows within its poll interval (audited)."""
        backend = get_object_or_404(self.get_queryset(), pk=int(id))
        if request.method == "POST":
            data = request.data if isinstance(request.data, dict) else {}
            if "override" not in data:
                raise ConfigError({"override": ['Send {"override": "up"}, "down" or null.']})
            services.set_health_override(backend, services.parse_override(data["override"]),
                                         actor=request.user, source="api")
        return Response(BackendHealthSerializer(health_document(backend)).data)
