"""The route page's extra admin views: the "try it" panel and purging the route's cached responses."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from routes import cache_purges, tryout
from routes.models import Route


def purge_routes(request: HttpRequest, routes: QuerySet[Route] | list[Route]) -> list[str]:
    """Request a purge of each route's cached answers; returns their names."""
    names = []
    for route in routes:
        cache_purges.request_purge(route=route.name, actor=request.user, source="admin")
        names.append(route.name)
    return names


def route_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    site = model_admin.admin_site
    return [
        path("<path:object_id>/try/", site.admin_view(lambda request, object_id: try_view(
            model_admin, request, object_id)), name="routes_route_try"),
        path("<path:object_id>/purge-cache/", site.admin_view(lambda request, object_id: purge_view(
            model_admin, request, object_id)), name="routes_route_purge_cache"),
    ]


def try_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """A form with a sample request and response; on submit, what they become (nothing is saved)."""
    route = get_object_or_404(Route, pk=object_id)
    if not model_admin.has_change_permission(request, route):
        raise PermissionDenied
    result = None
    if request.method == "POST":
        form = tryout.TryForm(request.POST)
        if form.is_valid():
            result = tryout.run(route, form.cleaned_data)
    else:
        form = tryout.TryForm(initial=tryout.initial_for(route))
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Try the transformations of {route.name}",
        "opts": model_admin.model._meta,
        "original": route,
        "form": form,
        "result": result,
        "change_url": reverse("admin:routes_route_change", args=[route.pk]),
    }
    return TemplateResponse(request, "admin/routes/route/try.html", context)


def purge_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST only: purge this route's cached answers on every gateway, then back to the route page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    route = get_object_or_404(Route, pk=object_id)
    if not model_admin.has_change_permission(request, route):
        raise PermissionDenied
    purge_routes(request, [route])
    messages.success(request, f"Cached responses of “{route.name}” will be dropped by every gateway within a "
                              "second.")
    return HttpResponseRedirect(reverse("admin:routes_route_change", args=[route.pk]))
