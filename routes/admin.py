"""The Django admin of the configuration: routes with their backends, the audit trail and the gateway settings.

Every write goes through routes.services: the admin never saves or deletes a route, a backend or an audit entry
itself, so an admin change is validated, audited and announced to the gateways like an API call.
"""
from __future__ import annotations

import json
from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.forms import Form, TypedChoiceField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from routes import admin_extras, name_check, services
from routes.certificates import admin as certificate_admin  # noqa: F401  (registers the certificates' admin)
from routes.consumers import admin as consumer_admin  # noqa: F401  (registers the consumers' admin)
from routes.forms import BackendInlineForm, BackendInlineFormSet, RouteAdminForm
from routes.health.admin import health_link
from routes.models import AuditEntry, Backend, BackendHealth, GatewaySettings, HealthEvent, HealthProbe, Route
from routes.schema import BLOCK_NAMES, BY_NAME
from routes.secrets import redact
from routes.settings_blocks import SETTINGS_BLOCKS
from routes.settings_form import GatewaySettingsForm
from routes.widgets import transformation_errors


def _pretty(value: Any) -> SafeString:
    if value is None:
        return format_html("<span>{}</span>", "—")
    return format_html("<pre style='margin:0;white-space:pre-wrap'>{}</pre>",
                       json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


class BackendInline(admin.TabularInline):
    """The route's backends, edited with the route and saved with it in one service call."""

    model = Backend
    form = BackendInlineForm
    formset = BackendInlineFormSet
    fields = ("host", "port", "weight", "health_check_path", "enabled", "description", "discovery", "tls",
              "health_state")
    readonly_fields = ("health_state",)
    extra = 1
    min_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Backend]:
        return super().get_queryset(request).select_related("health")

    # Not named `health`: that is the reverse relation to BackendHealth, which the admin would show instead.
    @admin.display(description="health")
    def health_state(self, backend: Backend) -> SafeString | str:
        """The backend's current state, linking to its probes, state changes and override."""
        return health_link(backend) if backend.pk else "—"

    # Backends are part of the route document: whoever may change routes may change their backends.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("routes.view_route") or request.user.has_perm("routes.change_route")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("routes.change_route" if obj else "routes.add_route")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("routes.change_route" if obj else "routes.add_route")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("routes.change_route" if obj else "routes.add_route")


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    """Routes, their backends and policies; saving assembles one route document for services.save_route."""

    form = RouteAdminForm
    inlines = [BackendInline]
    list_display = ("name", "external_path", "methods_list", "protocol", "backend_list", "enabled")
    list_filter = ("protocol", "enabled", "load_balancing_strategy", "auth_required", "auth")
    search_fields = ("name", "external_path", "backends__host")
    actions = ["enable_routes", "disable_routes", "purge_cache"]
    fieldsets = (
        (None, {"fields": ("name", "enabled", "protocol", "external_path", "methods", "match_host",
                           "internal_path", "priority")}),
        ("Upstream", {"fields": ("load_balancing_strategy", "connect_timeout_ms", "read_timeout_ms",
                                 "total_timeout_ms", "preserve_host", "auth_required", "auth")}),
        ("Resilience (JSON)", {
            "classes": ("collapse",),
            "fields": ("retry", "health_check", "circuit_breaker"),
        }),
        ("Transformations (JSON)", {
            "description": "Checked on save, each message naming the rule it is about. The “Try it” link at the "
                           "top of the page shows what a sample request and response become.",
            "fields": ("request_transformation", "response_transformation"),
        }),
        ("Caching and compression (JSON)", {
            "classes": ("collapse",),
            "fields": ("cache", "compression"),
        }),
        ("Policies (JSON, as in the earlier gateway's config)", {
            "classes": ("collapse",),
            "fields": ("rate_limit", "ai_policy"),
        }),
        ("Access and protocol settings (JSON; secrets shown as <redacted>)", {
            "classes": ("collapse",),
            "fields": ("jwt", "ftp", "websocket"),
        }),
        ("Request guards (JSON; empty: the gateway-wide settings)", {
            "classes": ("collapse",),
            "fields": ("cors", "limits", "ip_rules", "security_headers"),
        }),
        ("TLS (JSON; http, grpc and llm routes: redirect to HTTPS, client certificates)", {
            "classes": ("collapse",),
            "fields": ("tls",),
        }),
        ("LLM (JSON; llm routes only: their models, guard, token limits and budgets)", {
            "classes": ("collapse",),
            "fields": ("llm",),
        }),
        ("Traffic intelligence (JSON; http routes: adaptive limits, API docs learned from traffic)", {
            "classes": ("collapse",),
            "fields": ("abuse", "api_docs"),
        }),
        ("Plugins (JSON list; runs after the gateway-wide plugins)", {
            "classes": ("collapse",),
            "fields": ("plugins",),
        }),
    )
    change_form_template = "admin/routes/route/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Route]:
        return super().get_queryset(request).prefetch_related("backends")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        auth = form.base_fields.get("auth")
        if isinstance(auth, TypedChoiceField):
            # A form posted without it (a script written before `auth` existed) keeps meaning what it meant.
            auth.required = False
            auth.empty_value = BY_NAME["auth"].default
        return form

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Route | None:
        route = super().get_object(request, object_id, from_field)
        if route is not None and not self.has_change_permission(request, route):
            # A viewer's read-only page shows the stored values as they are: redact them on this copy (a
            # viewer can never save it).
            for block in BLOCK_NAMES:
                setattr(route, block, redact(getattr(route, block)))
        return route

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], add: bool = False,
                           change: bool = False, form_url: str = "", obj: Route | None = None) -> Any:
        # The transformation editor shows each error next to the rule it names (routes.widgets).
        context["transformation_errors"] = transformation_errors(context["adminform"].form)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="methods")
    def methods_list(self, route: Route) -> str:
        return ", ".join(route.methods)

    @admin.display(description="backends")
    def backend_list(self, route: Route) -> str:
        return ", ".join(backend.url for backend in route.backends.all())

    # --- Saving: one service call with the document the formset checked ------------------------------------

    def save_model(self, request: HttpRequest, obj: Route, form: Form, change: bool) -> None:
        doc = getattr(form, "route_document", None)
        if doc is not None:
            # Looked up before the save takes its locks: a slow DNS server must not hold them.
            unresolved = name_check.unresolved_backends(doc)
            saved = services.save_route(doc, actor=request.user, source="admin", route=obj if change else None)
            self._warn_unresolved(request, unresolved)
        else:
            # No backend rows were shown (cannot happen with the inline's permissions): keep the stored ones.
            saved = services.save_route(cast(RouteAdminForm, form).document(), actor=request.user, source="admin",
                                        route=obj, partial=True)
        obj.pk = saved.pk
        obj.name = saved.name

    def _warn_unresolved(self, request: HttpRequest, unresolved: name_check.Warnings) -> None:
        """The route is saved either way; the warning is the only place a typo in a host name shows before
        traffic gets 502 upstream_name_not_resolved."""
        for problem in dict.fromkeys(problem for problems in unresolved.values() for problem in problems):
            self.message_user(request, f"{problem}: requests to this backend will fail with 502 "
                                       f"upstream_name_not_resolved until it does.", messages.WARNING)

    def save_related(self, request: HttpRequest, form: Form, formsets: Any, change: bool) -> None:
        """The backends were saved with the route by services.save_route."""

    def construct_change_message(self, request: HttpRequest, form: Form, formsets: Any,
                                 add: bool = False) -> list[dict[str, Any]]:
        # The unsaved formsets have no new/changed objects to list; the audit entry holds the full diff.
        message = super().construct_change_message(request, form, [], add)
        if not add and any(formset.has_changed() for formset in formsets):
            if message and "changed" in message[0]:
                message[0]["changed"]["fields"].append("backends")
            else:
                message.append({"changed": {"fields": ["backends"]}})
        return message

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        """A route's backends take their health rows, probes and events with them. Those are the probes' state,
        which no one deletes by hand (their admin allows no delete), so deleting the route needs no permission
        for them."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        cascaded = {str(model._meta.verbose_name) for model in (BackendHealth, HealthEvent, HealthProbe)}
        return deleted, counts, set(perms_needed) - cascaded, protected

    def delete_model(self, request: HttpRequest, obj: Route) -> None:
        services.delete_route(obj, actor=request.user, source="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        """The bulk "Delete selected" action: each route deleted and audited by the service, all or none."""
        with transaction.atomic():
            for route in queryset.prefetch_related("backends"):
                services.delete_route(route, actor=request.user, source="admin")

    # --- Bulk enable / disable ------------------------------------------------------------------------------

    @admin.action(description="Enable selected routes", permissions=["change"])
    def enable_routes(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected routes", permissions=["change"])
    def disable_routes(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Route], enabled: bool) -> None:
        # One route at a time, so a route that would clash does not keep the others from being enabled.
        changed = 0
        verb = "enabled" if enabled else "disabled"
        for route in queryset.order_by("name"):
            try:
                changed += services.set_enabled([route], enabled, actor=request.user, source="admin")
            except services.ConfigError as exc:
                reasons = " ".join(message for found in exc.errors.values() for message in found)
                self.message_user(request, f"“{route.name}” was not {verb}: {reasons}", messages.ERROR)
        if changed:
            self.message_user(request, f"{changed} route(s) {verb}.", messages.SUCCESS)
        else:
            self.message_user(request, f"No route was {verb}.", messages.WARNING)


    # --- Cache purges and the "try it" panel (routes.admin_extras) -----------------------------------------

    @admin.action(description="Purge cached responses of selected routes", permissions=["change"])
    def purge_cache(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        names = admin_extras.purge_routes(request, queryset)
        self.message_user(request, f"Cached responses of {len(names)} route(s) will be dropped by every gateway "
                                   f"within a second: {', '.join(names)}.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        return admin_extras.route_urls(self) + super().get_urls()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Visible to staff, changed only through the service layer (import, API)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Who changed what and when; nobody edits or deletes the trail from the admin."""

    list_display = ("created_at", "actor_name", "source", "action", "object_type", "object_repr", "changed_fields")
    list_filter = ("action", "source", "object_type")
    search_fields = ("actor_name", "object_repr", "object_id")
    date_hierarchy = "created_at"
    fields = ("created_at", "actor_name", "source", "action", "object_type", "object_id", "object_repr",
              "changes_table")
    readonly_fields = fields

    @admin.display(description="changed")
    def changed_fields(self, entry: AuditEntry) -> str:
        return ", ".join(entry.changes) if isinstance(entry.changes, dict) else ""

    @admin.display(description="changes")
    def changes_table(self, entry: AuditEntry) -> SafeString:
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        if not changes:
            return format_html("<span>{}</span>", "No field changed.")
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((field, _pretty(pair[0] if isinstance(pair, list) and pair else None),
              _pretty(pair[1] if isinstance(pair, list) and len(pair) > 1 else pair))
             for field, pair in changes.items()),
        )
        return format_html("<table><thead><tr><th>field</th><th>before</th><th>after</th></tr></thead>"
                           "<tbody>{}</tbody></table>", rows)


SETTINGS_PK = 1  # the one GatewaySettings row (routes.services reads and writes pk 1)
SAVE_REPORT = "_rusta_settings_report"  # request attribute: what save_model's service call reported


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(admin.ModelAdmin):
    """The gateway-wide blocks of the earlier gateway's file (jwt, rate_limit, ai) and the request guards used by
    routes without their own (cors, limits, ip_rules, security_headers): one row, one JSON textarea per block.

    Saved through services.save_settings, like PUT /api/config/settings/: validated as an import is, audited
    per changed block, served by every gateway within 2 s. Viewers see the blocks read-only, secrets redacted.
    """

    form = GatewaySettingsForm
    readonly_fields = ("updated_at",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*SETTINGS_BLOCKS, "updated_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the one row is made by its first save

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # clear a block instead (an empty textarea)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        # Before the first save there is no row: the page edits an empty one, which the service creates.
        row = services.gateway_settings() if object_id == str(SETTINGS_PK) else None
        if row is not None and not self.has_change_permission(request, row):
            for block in SETTINGS_BLOCKS:  # a viewer's read-only page: a copy, never saved
                setattr(row, block, redact(getattr(row, block)))
        return row

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """There is one row: the list opens it."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return redirect(reverse("admin:routes_gatewaysettings_change", args=[SETTINGS_PK]))

    def save_model(self, request: HttpRequest, obj: GatewaySettings, form: Form, change: bool) -> None:
        document = getattr(form, "settings_document", None)
        report = None
        try:
            report = services.save_settings(document, actor=request.user, source="admin")
        except services.ConfigError as exc:
            # The form checked this document a moment ago; a change made since (say, an import that removed a
            # secret shown as <redacted> here) can still refuse it.
            reasons = " ".join(f"{path}: {' '.join(found)}" for path, found in exc.errors.items())
            self.message_user(request, f"The settings were not saved: {reasons}", messages.ERROR)
        setattr(request, SAVE_REPORT, report)

    def _saved_something(self, request: HttpRequest) -> bool:
        report = getattr(request, SAVE_REPORT, None)
        return report is not None and bool(report.added or report.changed or report.removed)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        """The admin's own history lists real changes only (the audit trail has the blocks' values)."""
        if self._saved_something(request):
            return super().log_change(request, obj, message)
        return None

    def response_change(self, request: HttpRequest, obj: GatewaySettings) -> HttpResponse:
        """"Changed successfully" only when a block changed: otherwise the page again, saying why."""
        if self._saved_something(request):
            return super().response_change(request, obj)
        if getattr(request, SAVE_REPORT, None) is not None:
            self.message_user(request, "No setting was changed.", messages.INFO)
        return redirect(request.path)
