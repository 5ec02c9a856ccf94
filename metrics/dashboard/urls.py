"""URLs of the dashboard, mounted at /admin/metrics/dashboard/ (staff only, through the admin's login)."""
from __future__ import annotations

from django.contrib import admin
from django.urls import path

from metrics.dashboard import views

app_name = "metrics-dashboard"

urlpatterns = [
    path("", admin.site.admin_view(views.dashboard), name="overview"),
    path("route/<str:route>/", admin.site.admin_view(views.route_page), name="route"),
    path("<slug:view>/", admin.site.admin_view(views.dashboard), name="view"),
]
