"""URLs of the management API (mounted under /api/); every one of them is for staff users only."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from routes.api.permissions import IsStaffPermission
from routes.api.views import ConfigViewSet, RouteViewSet

app_name = "api"

router = SimpleRouter()
router.register("routes", RouteViewSet, basename="route")
router.register("config", ConfigViewSet, basename="config")

urlpatterns: list[URLPattern | URLResolver] = [
    # drf-spectacular serves the schema to anyone by default; the API's shape is staff-only like the API.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsStaffPermission]), name="schema"),
    *router.urls,
]
