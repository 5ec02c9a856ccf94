"""The admin of consumers: the list, a consumer's page with its JWT subjects and API keys, and the key actions.

Every write goes through routes.consumers.services. Issuing or rotating a key answers a page that shows the key
once (never stored, never put in a message or a cookie, sent with `Cache-Control: no-store`); afterwards only its
prefix is shown. Revoking asks first, then ends the key.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from routes.consumers import services
from routes.consumers.models import ApiKey, Consumer
from routes.services import ConfigError

ACTION_TEMPLATE = "admin/routes/consumer/key_action.html"
ISSUED_TEMPLATE = "admin/routes/consumer/key_issued.html"


class ConsumerAdminForm(forms.ModelForm):
    """A consumer's fields; tags comma-separated, JWT subjects one per line. Checked by the service layer."""

    tags = forms.CharField(required=False, help_text="Comma-separated, like partner, eu.")
    jwt_subjects = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="JWT `sub` values that are this consumer, one per line; each belongs to one consumer at most.")

    class Meta:
        model = Consumer
        fields = ("name", "enabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk is not None:
            self.initial["tags"] = ", ".join(instance.tags)
            self.initial["jwt_subjects"] = "\n".join(s.subject for s in instance.subjects.all())
        self.consumer_document: dict[str, Any] | None = None

    def validate_unique(self) -> None:
        """The service layer reports a name clash, in the API's words."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        data = {
            "name": cleaned.get("name"),
            "enabled": bool(cleaned.get("enabled")),
            "tags": [tag.strip() for tag in (cleaned.get("tags") or "").split(",") if tag.strip()],
            "jwt_subjects": [line.strip() for line in (cleaned.get("jwt_subjects") or "").splitlines()
                             if line.strip()],
        }
        try:
            services.prepare_consumer(data, consumer=self.instance if self.instance.pk else None)
        except ConfigError as exc:
            for path_, found in exc.errors.items():
                field = path_.split("[")[0]
                self.add_error(field if field in self.fields else None, found)
        else:
            self.consumer_document = data
        return cleaned


@admin.register(Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    """Consumers, their subjects and keys; keys are issued, rotated and revoked from the consumer's page."""

    form = ConsumerAdminForm
    list_display = ("name", "enabled", "tag_list", "subject_count", "live_keys", "created_at")
    list_filter = ("enabled",)
    search_fields = ("name", "subjects__subject", "api_keys__prefix")
    readonly_fields = ("keys_table", "created_at", "updated_at")
    change_form_template = "admin/routes/consumer/change_form.html"

    def get_fields(self, request: HttpRequest, obj: Consumer | None = None) -> tuple[str, ...]:
        if self.has_change_permission(request, obj):
            fields = ("name", "enabled", "tags", "jwt_subjects")
            return fields + (("keys_table", "created_at", "updated_at") if obj is not None else ())
        return ("name", "enabled", "tag_list", "subject_list", "keys_list", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if self.has_change_permission(request, obj):
            return ("keys_table", "created_at", "updated_at")
        return ("name", "enabled", "tag_list", "subject_list", "keys_list", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Consumer]:
        live = Q(api_keys__revoked_at__isnull=True) & (
            Q(api_keys__expires_at__isnull=True) | Q(api_keys__expires_at__gt=timezone.now()))
        return super().get_queryset(request).prefetch_related("subjects").annotate(
            live_key_count=Count("api_keys", filter=live, distinct=True),
            subject_total=Count("subjects", distinct=True))

    @admin.display(description="tags")
    def tag_list(self, consumer: Consumer) -> str:
        return ", ".join(consumer.tags)

    @admin.display(description="JWT subjects")
    def subject_list(self, consumer: Consumer) -> str:
        return ", ".join(s.subject for s in consumer.subjects.all())

    @admin.display(description="JWT subjects")
    def subject_count(self, consumer: Consumer) -> int:
        return getattr(consumer, "subject_total", 0)

    @admin.display(description="live keys")
    def live_keys(self, consumer: Consumer) -> int:
        return getattr(consumer, "live_key_count", 0)

    @admin.display(description="API keys")
    def keys_table(self, consumer: Consumer) -> SafeString:
        """Each key by prefix with its dates and state, and links to rotate or revoke the live ones."""
        return _keys_table(consumer, may_change=True)

    @admin.display(description="API keys")
    def keys_list(self, consumer: Consumer) -> SafeString:
        """The keys as a viewer sees them: no actions."""
        return _keys_table(consumer, may_change=False)

    def save_model(self, request: HttpRequest, obj: Consumer, form: forms.Form, change: bool) -> None:
        saved = services.save_consumer(getattr(form, "consumer_document", None), actor=request.user,
                                       source="admin", consumer=obj if change else None)
        obj.pk, obj.name = saved.pk, saved.name

    def delete_model(self, request: HttpRequest, obj: Consumer) -> None:
        services.delete_consumer(obj, actor=request.user, source="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Consumer]) -> None:
        for consumer in queryset:
            services.delete_consumer(consumer, actor=request.user, source="admin")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:consumer_id>/keys/issue/", view(self.issue_view), name="routes_consumer_key_issue"),
            path("<int:consumer_id>/keys/<int:key_id>/rotate/", view(self.rotate_view),
                 name="routes_consumer_key_rotate"),
            path("<int:consumer_id>/keys/<int:key_id>/revoke/", view(self.revoke_view),
                 name="routes_consumer_key_revoke"),
        ] + super().get_urls()

    # --- Key actions: GET asks, POST does --------------------------------------------------------------------

    def _consumer(self, request: HttpRequest, consumer_id: int) -> Consumer:
        consumer = get_object_or_404(Consumer, pk=consumer_id)
        if not self.has_change_permission(request, consumer):
            raise PermissionDenied
        return consumer

    def _ask(self, request: HttpRequest, consumer: Consumer, title: str, text: str, field: str = "",
             key: ApiKey | None = None, error: str = "") -> HttpResponse:
        context = {**self.admin_site.each_context(request), "title": title, "text": text, "field": field,
                   "opts": self.model._meta, "original": consumer, "key": key, "error": error,
                   "default_overlap_s": services.DEFAULT_OVERLAP_S,
                   "change_url": reverse("admin:routes_consumer_change", args=[consumer.pk])}
        return TemplateResponse(request, ACTION_TEMPLATE, context)

    def _issued(self, request: HttpRequest, consumer: Consumer, issued: services.IssuedKey,
                old: ApiKey | None = None) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "title": f"New API key of {consumer.name}",
                   "opts": self.model._meta, "original": consumer, "issued": issued, "old": old,
                   "change_url": reverse("admin:routes_consumer_change", args=[consumer.pk])}
        response = TemplateResponse(request, ISSUED_TEMPLATE, context)
        response["Cache-Control"] = "no-store"  # the page holds the key: no copy in the browser's cache
        return response

    def issue_view(self, request: HttpRequest, consumer_id: int) -> HttpResponse:
        consumer = self._consumer(request, consumer_id)
        title = f"Issue an API key for {consumer.name}"
        text = "The key is shown once, on the next page; it works from the gateways' next reload (about a second)."
        if request.method != "POST":
            return self._ask(request, consumer, title, text, field="ttl_s")
        try:
            issued = services.issue_key(consumer, actor=request.user, source="admin",
                                        ttl_s=_seconds(request.POST.get("ttl_s")))
        except (ConfigError, ValueError) as exc:
            return self._ask(request, consumer, title, text, field="ttl_s", error=_reason(exc))
        return self._issued(request, consumer, issued)

    def rotate_view(self, request: HttpRequest, consumer_id: int, key_id: int) -> HttpResponse:
        consumer = self._consumer(request, consumer_id)
        key = get_object_or_404(ApiKey, pk=key_id, consumer=consumer)
        title = f"Rotate {key.prefix}… of {consumer.name}"
        text = "A new key is issued (shown once); this one keeps working for the overlap, then stops."
        if request.method != "POST":
            return self._ask(request, consumer, title, text, field="overlap_s", key=key)
        try:
            issued = services.rotate_key(key, actor=request.user, source="admin",
                                         overlap_s=_seconds(request.POST.get("overlap_s")))
        except (ConfigError, ValueError) as exc:
            return self._ask(request, consumer, title, text, field="overlap_s", key=key, error=_reason(exc))
        key.refresh_from_db()
        return self._issued(request, consumer, issued, old=key)

    def revoke_view(self, request: HttpRequest, consumer_id: int, key_id: int) -> HttpResponse:
        consumer = self._consumer(request, consumer_id)
        key = get_object_or_404(ApiKey, pk=key_id, consumer=consumer)
        if request.method != "POST":
            return self._ask(request, consumer, f"Revoke {key.prefix}… of {consumer.name}",
                             "Requests with this key get 401 invalid_api_key from the gateways' next reload.",
                             key=key)
        services.revoke_key(key, actor=request.user, source="admin")
        messages.success(request, f"Key {key.prefix}… of “{consumer.name}” is revoked.")
        return HttpResponseRedirect(reverse("admin:routes_consumer_change", args=[consumer.pk]))


def _seconds(raw: str | None) -> int | None:
    """A seconds box: empty means the default; anything else must be a whole number (ValueError)."""
    raw = (raw or "").strip()
    return int(raw) if raw else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ConfigError):
        return " ".join(message for found in exc.errors.values() for message in found)
    return "Give a whole number of seconds."


def _keys_table(consumer: Consumer, *, may_change: bool) -> SafeString:
    keys = list(consumer.api_keys.all()) if consumer.pk else []
    if not keys:
        return format_html("<span>{}</span>", "No key yet.")
    now = timezone.now()
    rows = []
    for key in keys:
        state = key.state(now)
        links: SafeString | str = ""
        if may_change and state in ("active", "expiring"):
            links = format_html(
                "<a href='{}'>rotate</a> · <a href='{}'>revoke</a>",
                reverse("admin:routes_consumer_key_rotate", args=[consumer.pk, key.pk]),
                reverse("admin:routes_consumer_key_revoke", args=[consumer.pk, key.pk]))
        rows.append((key.prefix + "…", key.created_at, key.expires_at or "—", key.revoked_at or "—", state, links))
    body = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                "<td>{}</td></tr>", rows)
    return format_html("<table><thead><tr><th>key</th><th>created</th><th>expires</th><th>revoked</th>"
                       "<th>state</th><th></th></tr></thead><tbody>{}</tbody></table>", body)
