"""URLs of the admin listener: the Django admin, the API under /api/, /metrics and the health endpoints."""
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("routes.api.urls")),
    path("api/", include("metrics.api.urls")),
    path("", include("django_prometheus.urls")),
]
