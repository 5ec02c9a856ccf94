"""The admin of backend health, active side: each backend's state (coloured), its last probes and state changes with
their reasons, and the operator's override (force up, force down, clear), applied through routes.health.services.

The list names every backend of every route, with or without a health-check path: the service layer gives each
backend its row (unknown, no override) when it creates it, so opening the list writes nothing. A backend without
one (a row deleted by hand) still opens on its own page (an unsaved, unknown state), so that it can be forced down
before its first probe.

metrics.admin registers BackendHealthAdmin with the passive columns (circuit breaker, recent traffic, failed
connections) added: those are the gateways' figures, and routes does not import metrics.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from routes.health import checks, services
from routes.health.models import BackendHealth, HealthEvent, HealthProbe, HealthState, Override
from routes.models import Backend

COLOURS = {HealthState.HEALTHY: "#2e7d32", HealthState.UNHEALTHY: "#c62828", HealthState.UNKNOWN: "#757575"}
SHOWN = 20  # probes and changes listed on a backend's page


def health_badge(health: BackendHealth | None) -> SafeString:
    """The coloured state of a backend, with its override and reason, as the route page and lists show it."""
    state = health.state if health is not None else HealthState.UNKNOWN
    badge = format_html("<strong style='color:#fff;background:{};padding:1px 6px;border-radius:3px'>{}</strong>",
                        COLOURS[HealthState(state)], state)
    if health is None or (health.last_probe_at is None and state == HealthState.UNKNOWN and not health.reason
                          and health.override == Override.NONE):
        return format_html("{} <span>{}</span>", badge, "not probed")
    extra = []
    if health.override != Override.NONE:
        extra.append(format_html("<strong>{}</strong>", Override(health.override).label.lower()))
    if health.reason:
        extra.append(format_html("<span>{}</span>", health.reason))
    return format_html("{} {}", badge, format_html_join(" · ", "{}", ((part,) for part in extra)))


def health_link(backend: Backend) -> SafeString:
    """A backend's health badge linking to its health page (probes, changes, override)."""
    try:
        health: BackendHealth | None = backend.health
    except BackendHealth.DoesNotExist:
        health = None
    url = reverse("admin:routes_backendhealth_change", args=[backend.pk])
    return format_html("<a href='{}'>{}</a>", url, health_badge(health))


# The backend page's fields: what the active checks know (metrics.admin adds the passive state after the 4th).
ACTIVE_FIELDS: tuple[str, ...] = (
    "backend_url", "route_name", "state_badge", "effective_health", "consecutive_successes",
    "consecutive_failures", "last_probe_at", "last_change_at", "override", "override_by", "override_at",
    "probes_table", "changes_table")


class BackendHealthAdmin(admin.ModelAdmin):
    """Active health of every backend (probes, state changes); the only change is the override, through
    routes.health.services. metrics.admin registers a subclass that adds the passive columns."""

    change_form_template = "admin/routes/backendhealth/change_form.html"
    list_display = ("backend_url", "route_name", "state_badge", "override", "last_probe_at")
    list_filter = ("state", "override")
    list_select_related = ("backend__route",)
    search_fields = ("backend__host", "backend__route__name", "reason")
    ordering = ("backend__route__name", "backend__position", "backend_id")
    actions = ["force_up", "force_down", "clear_override"]
    fields = ACTIVE_FIELDS
    readonly_fields = ACTIVE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[BackendHealth]:
        checked = checks.checked_backends().filter(pk=OuterRef("backend_id"))
        return super().get_queryset(request).annotate(checked=Exists(checked))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        found = super().get_object(request, object_id, from_field)
        if found is not None or not object_id.isdigit():
            return found
        backend = Backend.objects.select_related("route").filter(pk=int(object_id)).first()
        if backend is None:
            return None
        health = BackendHealth(backend=backend)
        health.checked = checks.checked_backends().filter(pk=backend.pk).exists()  # type: ignore[attr-defined]
        return health

    # --- Columns --------------------------------------------------------------------------------------------

    @admin.display(description="backend", ordering="backend__host")
    def backend_url(self, health: BackendHealth) -> str:
        return health.backend.url

    @admin.display(description="route", ordering="backend__route__name")
    def route_name(self, health: BackendHealth) -> SafeString:
        route = health.backend.route
        return format_html("<a href='{}'>{}</a>", reverse("admin:routes_route_change", args=[route.pk]), route.name)

    @admin.display(description="health check", ordering="state")
    def state_badge(self, health: BackendHealth) -> SafeString:
        if not getattr(health, "checked", True) and health.state == HealthState.UNKNOWN:
            reason = "no health-check path" if not health.backend.health_check_path else "not checked"
            text = format_html("<span class='quiet'>{}</span>", reason)
            if health.override == Override.NONE:
                return text
            return format_html("{} <strong>{}</strong>", text, Override(health.override).label.lower())
        return health_badge(None if health._state.adding else health)

    @admin.display(description="gets traffic", boolean=True)
    def effective_health(self, health: BackendHealth) -> bool:
        return health.effective

    @admin.display(description=f"last {SHOWN} probes")
    def probes_table(self, health: BackendHealth) -> SafeString:
        probes = HealthProbe.objects.filter(backend_id=health.pk).order_by("-id")[:SHOWN]
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (p.at.isoformat(timespec="milliseconds"), "ok" if p.ok else "failed", p.text,
             "" if p.latency_ms is None else f"{p.latency_ms:.1f} ms", p.detail)
            for p in probes))
        return _table(("time", "result", "reason", "latency", "detail"), rows, "No probe yet.")

    @admin.display(description=f"last {SHOWN} state changes")
    def changes_table(self, health: BackendHealth) -> SafeString:
        events = HealthEvent.objects.filter(backend_id=health.pk).order_by("-id")[:SHOWN]
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td></tr>", (
            (e.at.isoformat(timespec="milliseconds"), e.get_source_display(), e.from_state, e.to_state, e.reason)
            for e in events))
        return _table(("time", "source", "change", "reason"), rows, "No change yet.")

    # --- The override: buttons on the page and bulk actions ---------------------------------------------------

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST":
            obj = self.get_object(request, object_id)
            if not self.has_change_permission(request, obj):
                raise PermissionDenied  # a viewer: the override is a configuration change
            choice = request.POST.get("_override")
            if obj is not None and choice in Override.values:
                self._override(request, [obj.backend], choice)
            # Nothing else on this page is editable; whatever else was posted is ignored.
            return HttpResponseRedirect(request.path)
        context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                   "show_save_and_add_another": False, "show_delete": False}
        return super().change_view(request, object_id, form_url, context)

    @admin.action(description="Force selected backends up", permissions=["change"])
    def force_up(self, request: HttpRequest, queryset: QuerySet[BackendHealth]) -> None:
        self._override(request, [h.backend for h in queryset.select_related("backend")], Override.UP)

    @admin.action(description="Force selected backends down", permissions=["change"])
    def force_down(self, request: HttpRequest, queryset: QuerySet[BackendHealth]) -> None:
        self._override(request, [h.backend for h in queryset.select_related("backend")], Override.DOWN)

    @admin.action(description="Clear the override of selected backends", permissions=["change"])
    def clear_override(self, request: HttpRequest, queryset: QuerySet[BackendHealth]) -> None:
        self._override(request, [h.backend for h in queryset.select_related("backend")], Override.NONE)

    def _override(self, request: HttpRequest, backends: list[Backend], override: str) -> None:
        for backend in backends:
            services.set_health_override(backend, override, actor=request.user, source="admin")
        label = {Override.UP: "forced up", Override.DOWN: "forced down", Override.NONE: "cleared of overrides"}
        self.message_user(request, f"{len(backends)} backend(s) {label[Override(override)]}.", messages.SUCCESS)


def _table(headers: tuple[str, ...], rows: SafeString, empty: str) -> SafeString:
    if not rows:
        return format_html("<span>{}</span>", empty)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, rows)
