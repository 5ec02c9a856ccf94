"""URLs of the admin listener: the Django admin, the API under /api/, /metrics and the health endpoints."""
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from metrics.views import prometheus_metrics

urlpatterns = [
    path("admin/metrics/dashboard/", include("metrics.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("routes.api.urls")),
    path("api/", include("metrics.api.urls")),
    path("metrics", prometheus_metrics, name="prometheus-django-metrics"),
]
# An unknown URL under /api/ answers the API's JSON error shape (routes.api.error_handlers); elsewhere Django's page.
handler404 = "routes.api.error_handlers.not_found"
