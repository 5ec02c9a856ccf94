"""The admin of the metrics app: backend health with its passive state added, and how long the history is kept.

Backend health is routes' (routes.health.admin: probes, state changes, the override); this registers it with the
passive columns the gateways report: circuit breaker, recent traffic, failed connections.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from metrics import services
from metrics.models import FillState, RetentionPolicy
from metrics.overview import RECENT, Passive, PassiveBoard
from routes.health.admin import ACTIVE_FIELDS, BackendHealthAdmin
from routes.health.models import BackendHealth

BREAKER_COLOURS = {"closed": "#2e7d32", "half-open": "#ef6c00", "open": "#c62828"}
RECENT_TEXT = f"last {int(RECENT.total_seconds() // 60)} min"
PASSIVE_FIELDS = ("circuit_breaker", "recent_errors", "connection_failures")


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
class PassiveBackendHealthAdmin(BackendHealthAdmin):
    """Backend health as the admin shows it: the active checks (routes.health.admin) and, beside them, the passive
    state the gateway workers report (breaker, recent errors, failed connections)."""

    fields = (*ACTIVE_FIELDS[:4], *PASSIVE_FIELDS, *ACTIVE_FIELDS[4:])
    readonly_fields = fields

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

# The adaptive limits' verdicts (registered on import: the admin autodiscovers this module only).
from metrics.abuse import admin as abuse_admin  # noqa: E402,F401
