"""URLs of the management API (mounted under /api/): staff users only, reads for viewers, writes for operators."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from routes.api.audit import AuditEntryViewSet
from routes.api.cache import CacheViewSet
from routes.api.health import BackendHealthViewSet
from routes.api.permissions import RolePermission
from routes.api.views import ConfigViewSet, RouteViewSet

app_name = "api"

router = SimpleRouter()
router.register("routes", RouteViewSet, basename="route")
router.register("config", ConfigViewSet, basename="config")
router.register("audit", AuditEntryViewSet, basename="audit")
router.register("cache", CacheViewSet, basename="cache")
router.register("backends", BackendHealthViewSet, basename="backend")

urlpatterns: list[URLPattern | URLResolver] = [
    # drf-spectacular serves the schema to anyone by default; the API's shape is staff-only like the API.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[RolePermission]), name="schema"),
    *router.urls,
]
