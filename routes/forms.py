"""Admin forms for routes: the route form and its backend rows are validated together by routes.services.

Django validates the route form first, then the inline formsets, which are built on the same (unsaved) route
instance. The backend formset's `clean()` therefore sees the finished route form through that instance, assembles
one route document from both, and runs `services.prepare_route` on it; each error goes back to the field or
backend row it names. The document is kept on the form so that the admin saves exactly what was checked.
"""
from __future__ import annotations

import json
import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from routes import services
from routes.block_keys import keys_summary
from routes.models import Backend, Route
from routes.schema import BLOCK_NAMES, BLOCKS_BY_NAME, BY_NAME, HTTP_METHODS, REQUIRED, STORED_NAMES, Block
from routes.secrets import redact
from routes.validation import DNS_DEFAULTS, Errors
from routes.widgets import TransformationEditorWidget

# Attribute of the route instance that links the backend formset back to the route form.
FORM_LINK = "_rusta_route_form"
TRANSFORMATION_BLOCKS = ("request_transformation", "response_transformation")
# `backends[0]`, `backends[0].port`, `backends[0].discovery.interval_s` or `backends[0].tls.verify` (a key inside
# the row's JSON field).
BACKEND_ERROR = re.compile(r"^backends\[(\d+)\](?:\.(\w+)(?:\.(.+))?)?$")


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented; empty means null."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None:
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)


def _json_field(help_text: str) -> PrettyJSONField:
    return PrettyJSONField(required=False, help_text=help_text,
                           widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "class": "vLargeTextField"}))


def _block_form_field(block: Block) -> PrettyJSONField:
    """A block's JSON field, from its declaration: the admin's help with an example, ending with the block's keys
    and defaults as routes.block_keys declares them (so the admin can never quote a default the proxy does not
    apply). The transformations get the rule editor, whose rows show the keys."""
    if block.name in TRANSFORMATION_BLOCKS:
        return PrettyJSONField(required=False, widget=TransformationEditorWidget(block.name),
                               help_text=block.admin_help)
    return _json_field(f"{block.admin_help} Keys (default): {keys_summary(block.name)}.")


class RouteAdminForm(forms.ModelForm):
    """The route's own fields; policies are JSON in the earlier gateway's shape, secrets shown redacted."""

    methods = forms.MultipleChoiceField(
        choices=[(m, m) for m in HTTP_METHODS], widget=forms.CheckboxSelectMultiple,
        help_text="GET also allows HEAD.",
    )

    class Meta:
        model = Route
        fields = STORED_NAMES  # the route's own fields, as routes.schema declares them; backends are inline rows

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        setattr(self.instance, FORM_LINK, self)
        for field in BLOCK_NAMES:
            self.initial[field] = redact(self.initial.get(field))
        self.route_document: dict[str, Any] | None = None
        if "name" not in self.fields:
            return  # a viewer's read-only page: the admin shows the values without form fields
        # As in the earlier gateway's file, a route may come without a name; one is made from its path.
        self.fields["name"].required = False
        self.fields["name"].help_text = "Unique; left empty, one is made from the protocol and path."
        # A dns route may leave its path and methods empty (they become DNS over HTTPS's, DNS_DEFAULTS); every
        # other protocol needs them, which the service layer says in the API's words.
        for field in ("external_path", "methods"):
            self.fields[field].required = False
        dns_path, dns_methods = DNS_DEFAULTS["external_path"], ", ".join(DNS_DEFAULTS["methods"])
        self.fields["external_path"].help_text = ("Public path; {name} captures one segment. dns routes: leave "
                                                  f"empty (DNS over HTTPS, {dns_path}).")
        self.fields["methods"].help_text = f"GET also allows HEAD. dns routes: leave empty ({dns_methods})."
        self.fields["total_timeout_ms"].required = False
        self.fields["total_timeout_ms"].help_text = "Limit on the whole exchange, retries included; empty or 0: none."

    def validate_unique(self) -> None:
        """The service layer reports name clashes (with the same wording as the API), not the model form."""

    def document(self) -> dict[str, Any]:
        """The route document of the cleaned fields, without backends."""
        data = {field: self.cleaned_data.get(field) for field in STORED_NAMES}
        # An empty text or number box means the field's declared default (a path without one: empty, which the
        # service layer fills in for dns routes or refuses).
        for name in STORED_NAMES:
            declared = BY_NAME[name]
            if declared.kind in ("text", "int") and data[name] in (None, ""):
                data[name] = "" if declared.default is REQUIRED else declared.default
        data["methods"] = list(data["methods"] or [])
        return data


# Every block declared in routes.schema is a JSON field of the form (DeclarativeFieldsMetaclass reads
# `declared_fields` again for the admin's subclass of this form).
for _block in BLOCKS_BY_NAME.values():
    RouteAdminForm.declared_fields[_block.name] = RouteAdminForm.base_fields[_block.name] = _block_form_field(_block)


class BackendInlineForm(forms.ModelForm):
    """One backend row; the host is shown with its scheme, as in the route document (`http://10.0.0.5`)."""

    host = forms.CharField(
        max_length=300, help_text="Like http://10.0.0.5 or wss://chat; a bare host takes the protocol's scheme.")
    discovery = PrettyJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 30}),
        help_text='Empty: the host as it is. {"type": "a"}: each A/AAAA address of the host is a backend at this '
                  'port; {"type": "srv"}: the host is an SRV name (_http._tcp.api.internal) whose targets and '
                  'ports are the backends. Also "interval_s" (5) and "resolver" ("127.0.0.1:8600"; default the '
                  "system's). Not with wss/ftps or a health check path.")
    tls = PrettyJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 30}),
        help_text='https and wss backends. Empty: the system\'s CAs, the host\'s name, verified. {"ca": "-----BEGIN '
                  'CERTIFICATE-----..."}: the CAs that sign its certificate; "server_name": the name sent (SNI) and '
                  'verified; "verify": false accepts any certificate.')

    class Meta:
        model = Backend
        fields = ("host", "port", "weight", "health_check_path", "enabled", "description", "discovery", "tls")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            host = self.instance.host
            self.initial["host"] = f"{self.instance.scheme}://" + (f"[{host}]" if ":" in host else host)
        if "weight" not in self.fields:
            return  # read-only for a viewer
        self.fields["weight"].required = False
        self.fields["port"].required = False
        self.fields["port"].help_text = "Empty takes the scheme's port."

    def document(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "host": data.get("host"),
            "port": data.get("port"),
            "weight": 1 if data.get("weight") is None else data["weight"],
            "health_check_path": data.get("health_check_path") or None,
            "enabled": bool(data.get("enabled")),
            "description": data.get("description") or "",
            "discovery": data.get("discovery"),
            "tls": data.get("tls"),
        }


class BackendInlineFormSet(BaseInlineFormSet):
    """The backend rows; validating them validates the whole route through the service layer."""

    def clean(self) -> None:
        super().clean()
        route_form: RouteAdminForm | None = getattr(self.instance, FORM_LINK, None)
        if route_form is None:
            return
        # The formset is built with BackendInlineForm (routes.admin.BackendInline.form).
        rows = [cast(BackendInlineForm, form) for form in self.forms if self._counts(form)]
        # Field-level problems (a port that is not a number) are shown first; the rules come after.
        if route_form.errors or any(form.errors for form in rows):
            return
        doc = route_form.document()
        doc["backends"] = [form.document() for form in rows]
        stored = Route.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        try:
            services.prepare_route(doc, route=stored)
        except services.ConfigError as exc:
            self._report(exc.errors, route_form, rows)
            raise ValidationError("The route was not saved: correct the errors above.") from None
        route_form.route_document = doc

    def _counts(self, form: forms.BaseForm) -> bool:
        """Rows marked for deletion and blank extra rows are not backends."""
        if self.can_delete and self._should_delete_form(form):  # type: ignore[attr-defined]  # not in the stubs
            return False
        return cast(BackendInlineForm, form).instance.pk is not None or form.has_changed()

    def _report(self, errors: Errors, route_form: RouteAdminForm, rows: list[BackendInlineForm]) -> None:
        backend_messages: list[str] = []
        for key, messages in errors.items():
            match = BACKEND_ERROR.match(key)
            if match and int(match.group(1)) < len(rows):
                row = rows[int(match.group(1))]
                field = match.group(2) if match.group(2) in row.fields else None
                # A key inside a JSON field (discovery.interval_s, tls.verify) is named before its message.
                inner = f"{match.group(3)}: " if match.group(3) and field else ""
                for message in messages:
                    row.add_error(field, inner + message)
            elif key == "backends":
                backend_messages.extend(messages)
            else:
                top = key.split(".", 1)[0].split("[", 1)[0]
                field = top if top in route_form.fields else None
                # A nested key (retry.max_retries) names the part of the JSON field that is wrong.
                if field is None:
                    prefix = f"{key}: " if key else ""
                else:
                    prefix = f"{key[len(top) + 1:]}: " if key != top else ""
                for message in messages:
                    route_form.add_error(field, prefix + message)
        if backend_messages:
            raise ValidationError(backend_messages)
