"""The admin of backend health: each backend's state (coloured), its last probes and state changes with their
reasons, its passive state (circuit breaker, recent errors, failed connections), and the operator's override
(force up, force down, clear), applied through metrics.services.

The list names every backend of every route, with or without a health-check path: opening it gives each
backend its row (unknown, no override; metrics.health.ensure_rows). A backend's own page opens without one
(an unsaved, unknown state), so that it can be forced down before its first probe.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from metrics import health as checks
from metrics import services
from metrics.models import BackendHealth, FillState, HealthEvent, HealthProbe, HealthState, Override, RetentionPolicy
from metrics.overview import RECENT, Passive, PassiveBoard
from routes.models import Backend

COLOURS = {HealthState.HEALTHY: "#2e7d32", HealthState.UNHEALTHY: "#c62828", HealthState.UNKNOWN: "#757575"}
BREAKER_COLOURS = {"closed": "#2e7d32", "half-open": "#ef6c00", "open": "#c62828"}
SHOWN = 20  # probes and changes listed on a backend's page
RECENT_TEXT = f"last {int(RECENT.total_seconds() // 60)} min"


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
    url = reverse("admin:metrics_backendhealth_change", args=[backend.pk])
    return format_html("<a href='{}'>{}</a>", url, health_badge(health))


def breaker_badge(passive: Passive) -> SafeString:
    """The circuit breaker as the gateway workers report it (the worst state over the workers)."""
    if passive.breaker is None:
        return format_html("<span class='quiet'>{}</span>", "no traffic yet")
    badge = format_html("<strong style='color:#fff;background:{};padding:1px 6px;border-radius:3px'>{}</strong>",
                        BREAKER_COLOURS.get(passive.breaker, "#757575"), passive.breaker)
    if not passive.opens:
        return badge
    return format_html("{} <span title='{}'>opened {}×</span>", badge, "times opened since the gateway started",
                       passive.opens)


def recent_traffic(passive: Passive) -> SafeString:
    """Requests to this backend in the recent window, with its 5xx answers and the gateway's own errors."""
    recent = passive.recent
    if not recent.count:
        return format_html("<span class='quiet'>{}</span>", "no traffic")
    text = format_html("{} requests", recent.count)
    if recent.errors_5xx:
        text = format_html("{} · <strong style='color:#c62828'>{} × 5xx</strong>", text, recent.errors_5xx)
    if recent.errors_gateway:
        text = format_html("{} ({} by the gateway)", text, recent.errors_gateway)
    return text


def failed_connections(passive: Passive) -> SafeString:
    """Failed connection attempts by kind since the gateway started (retries each count)."""
    if not passive.failures:
        return format_html("<span class='quiet'>{}</span>", "none")
    return format_html_join(" · ", "{} {}", passive.failures.items())


@admin.register(BackendHealth)
class BackendHealthAdmin(admin.ModelAdmin):
    """Health of every backend, active (probes) and passive (breaker, errors); the only change is the override,
    through metrics.services."""

    change_form_template = "admin/metrics/backendhealth/change_form.html"
    list_display = ("backend_url", "route_name", "state_badge", "override", "last_probe_at")
    list_filter = ("state", "override")
    list_select_related = ("backend__route",)
    search_fields = ("backend__host", "backend__route__name", "reason")
    ordering = ("backend__route__name", "backend__position", "backend_id")
    actions = ["force_up", "force_down", "clear_override"]
    fields = ("backend_url", "route_name", "state_badge", "effective_health", "circuit_breaker", "recent_errors",
              "connection_failures", "consecutive_successes", "consecutive_failures", "last_probe_at",
              "last_change_at", "override", "override_by", "override_at", "probes_table", "changes_table")
    readonly_fields = fields

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

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        checks.ensure_rows()
        return super().changelist_view(request, extra_context)

    def get_list_display(self, request: HttpRequest) -> Any:
        """The columns, with the passive state read once for the whole page (the workers' figures and the
        recent series), not per row."""
        board = PassiveBoard.load(timezone.now(), RECENT)

        @admin.display(description="circuit breaker")
        def breaker(health: BackendHealth) -> SafeString:
            return breaker_badge(board.of(health.backend.route.name, health.backend))

        @admin.display(description=f"traffic ({RECENT_TEXT})")
        def recent(health: BackendHealth) -> SafeString:
            return recent_traffic(board.of(health.backend.route.name, health.backend))

        @admin.display(description="failed connections")
        def failures(health: BackendHealth) -> SafeString:
            return failed_connections(board.of(health.backend.route.name, health.backend))

        names = list(super().get_list_display(request))
        at = names.index("state_badge") + 1
        return [*names[:at], breaker, recent, failures, *names[at:]]

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

    def _passive(self, health: BackendHealth) -> Passive:
        """The passive state on a backend's own page (read once per page, kept on the object)."""
        cached: Passive | None = getattr(health, "_passive", None)
        if cached is None:
            board = PassiveBoard.load(timezone.now(), RECENT)
            cached = health._passive = board.of(health.backend.route.name, health.backend)  # type: ignore[attr-defined]
        return cached

    @admin.display(description="circuit breaker")
    def circuit_breaker(self, health: BackendHealth) -> SafeString:
        return breaker_badge(self._passive(health))

    @admin.display(description=f"traffic ({RECENT_TEXT})")
    def recent_errors(self, health: BackendHealth) -> SafeString:
        return recent_traffic(self._passive(health))

    @admin.display(description="failed connections since the gateway started")
    def connection_failures(self, health: BackendHealth) -> SafeString:
        return failed_connections(self._passive(health))

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


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """How long each resolution of the traffic history is kept; one row per resolution, only `keep_days` edits.

    The change list links to the metrics dashboard."""

    list_display = ("resolution_label", "keep_days", "filled_until")
    list_editable = ("keep_days",)
    fields = ("resolution", "keep_days")
    readonly_fields = ("resolution",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: RetentionPolicy, form: Any, change: bool) -> None:
        """Through metrics.services, so the change is audited like every configuration change."""
        services.set_retention(obj, obj.keep_days, actor=request.user, source="admin")

    @admin.display(description="resolution", ordering="id")
    def resolution_label(self, policy: RetentionPolicy) -> str:
        return policy.get_resolution_display()

    @admin.display(description="rolled up until")
    def filled_until(self, policy: RetentionPolicy) -> str:
        state = FillState.objects.filter(resolution=policy.resolution).first()
        return state.filled_until.isoformat(timespec="seconds") if state else "–"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "subtitle": format_html(
            "Open the <a href='{}'>metrics dashboard</a>.", reverse("metrics-dashboard:overview"))}
        return super().changelist_view(request, context)
