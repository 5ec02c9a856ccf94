"""The admin of TLS certificates: the list (name, hosts, default, expiry) and a page whose key box is never filled.

Every write goes through routes.certificates.services. The key is write-only here too: its box is always shown
empty, and left empty on an existing certificate it keeps the stored key; a viewer's read-only page has no key.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from routes.certificates import services
from routes.certificates.models import Certificate
from routes.services import ConfigError

DERIVED = ("subject", "issuer", "not_before", "not_after", "expires_in_days", "fingerprint_sha256", "created_at",
           "updated_at")


class SecretTextarea(forms.Textarea):
    """A textarea that, like a password box, never renders a value back into the page."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        return super().get_context(name, None, attrs)


class CertificateAdminForm(forms.ModelForm):
    """A certificate's fields; hosts one per line. Checked by the service layer."""

    hosts = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="DNS names it serves, one per line (*.example.com for one label); empty: the certificate's own "
                  "subjectAltName names.")
    certificate = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80, "class": "vLargeTextField"}),
        help_text="The PEM chain: the leaf first, then its intermediates.")
    key = forms.CharField(
        required=False, widget=SecretTextarea(attrs={"rows": 6, "cols": 80, "autocomplete": "off"}),
        help_text="The private key in PEM (not encrypted). Never shown; left empty when editing, the stored key "
                  "is kept.")

    class Meta:
        model = Certificate
        fields = ("name", "hosts", "certificate", "key", "default")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["hosts"] = "\n".join(self.instance.hosts)
        self.initial["key"] = ""
        self.certificate_document: dict[str, Any] | None = None

    def validate_unique(self) -> None:
        """The service layer reports a name clash or a second default, in the API's words."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        data: dict[str, Any] = {
            "name": cleaned.get("name"),
            "hosts": [line.strip() for line in (cleaned.get("hosts") or "").splitlines() if line.strip()],
            "certificate": cleaned.get("certificate"),
            "default": bool(cleaned.get("default")),
        }
        if (cleaned.get("key") or "").strip():
            data["key"] = cleaned["key"]
        try:
            services.prepare_certificate(data, row=self.instance if self.instance.pk else None)
        except ConfigError as exc:
            for path, found in exc.errors.items():
                field = path.split("[")[0]
                self.add_error(field if field in self.fields else None, found)
        else:
            self.certificate_document = data
        return cleaned


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    """TLS certificates of the proxy listener; saved, audited and announced by the service layer."""

    form = CertificateAdminForm
    list_display = ("name", "host_list", "default", "not_after")
    list_filter = ("default",)
    search_fields = ("name", "subject")
    ordering = ("name",)

    def get_fields(self, request: HttpRequest, obj: Certificate | None = None) -> tuple[str, ...]:
        if not self.has_change_permission(request, obj):
            return ("name", "host_list", "default", *DERIVED)  # a viewer's page: never the key
        return ("name", "hosts", "certificate", "key", "default", *(DERIVED if obj is not None else ()))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if not self.has_change_permission(request, obj):
            return self.get_fields(request, obj)
        return DERIVED

    @admin.display(description="hosts")
    def host_list(self, row: Certificate) -> str:
        return ", ".join(row.hosts)

    @admin.display(description="expires in (days)")
    def expires_in_days(self, row: Certificate) -> int | None:
        return row.expires_in_days(timezone.now())

    def save_model(self, request: HttpRequest, obj: Certificate, form: forms.Form, change: bool) -> None:
        saved = services.save_certificate(getattr(form, "certificate_document", None), actor=request.user,
                                          source="admin", row=obj if change else None)
        obj.pk, obj.name = saved.pk, saved.name

    def delete_model(self, request: HttpRequest, obj: Certificate) -> None:
        services.delete_certificate(obj, actor=request.user, source="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Certificate]) -> None:
        for row in queryset:
            services.delete_certificate(row, actor=request.user, source="admin")
