"""The admin form of the gateway-wide settings: one JSON textarea per block, checked by routes.services.

`clean()` runs `services.prepare_settings` on the whole document, the same check the API and the import use, and
puts each error on the field its path names (`rate_limit.window_s` on `rate_limit`, as "window_s: ..."). The
document it checked is kept on the form, so that the admin saves exactly that through `services.save_settings`.
"""
from __future__ import annotations

from typing import Any

from django import forms

from routes import services
from routes.forms import PrettyJSONField
from routes.models import GatewaySettings
from routes.secrets import redact
from routes.settings_blocks import SETTINGS_BLOCKS
from routes.validation import Errors

HELP = {
    "jwt": 'For routes with auth_required and no jwt block of their own, like {"secret": "at least 32 bytes for '
           'HS256", "issuer": "https://idp.example.com"} or {"jwks_url": "https://idp.example.com/.well-known/'
           'jwks.json", "algorithms": ["RS256"]}. A secret shown as <redacted> is kept when saved unchanged.',
    "rate_limit": 'For routes without their own, like {"limit": 100, "window_s": 60, "scope": ["ip"], '
                  '"algorithm": "sliding_window"}.',
    "ai": 'The LLM routes with an ai_policy ask unless they name their own: {"provider": "openai", "model": '
          '"gpt-4o-mini", "api_key": "..."} (or the key from OPENAI_API_KEY), {"provider": "openai_compatible", '
          '"base_url": "http://127.0.0.1:8000", "model": "..."}; also timeout_ms and max_concurrency. An api_key '
          "shown as <redacted> is kept when saved unchanged.",
    "cors": 'For routes without their own, like {"origins": ["https://app.example.com"], "credentials": true}.',
    "limits": 'For routes without their own, like {"max_body_bytes": 10485760}; the header and URL limits '
              "apply by default.",
    "ip_rules": 'For routes without their own, like {"allow": ["10.0.0.0/8"], "deny": ["10.0.0.13"]}: deny wins; '
                "with an allow list, every other address gets 403.",
    "security_headers": 'For routes without their own; on by default, like {"frame_options": "DENY", '
                        '"hsts_max_age": 31536000}; false switches a header off.',
    "plugins": 'Installed plugins every http route runs, a list like [{"name": "example", "config": {"header": '
               '"X-Example"}, "order": 0, "timeout_ms": 50, "on_error": "fail"}]; a route\'s own entry of the same '
               "name replaces the one here.",
}


def _block_field(block: str) -> PrettyJSONField:
    return PrettyJSONField(required=False, label=block, help_text=HELP[block], widget=forms.Textarea(
        attrs={"rows": 6, "cols": 80, "class": "vLargeTextField", "spellcheck": "false"}))


class GatewaySettingsForm(forms.ModelForm):
    """Every settings block as indented JSON, secrets shown `<redacted>`; an empty block means none."""

    jwt = _block_field("jwt")
    rate_limit = _block_field("rate_limit")
    ai = _block_field("ai")
    cors = _block_field("cors")
    limits = _block_field("limits")
    ip_rules = _block_field("ip_rules")
    security_headers = _block_field("security_headers")
    plugins = _block_field("plugins")

    class Meta:
        model = GatewaySettings
        fields = SETTINGS_BLOCKS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for block in SETTINGS_BLOCKS:
            self.initial[block] = redact(self.initial.get(block))
        # The document `clean()` checked: what the admin saves.
        self.settings_document: dict[str, Any] | None = None

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned  # a textarea that is not JSON is reported as such, first
        document = {block: cleaned.get(block) for block in SETTINGS_BLOCKS}
        try:
            services.prepare_settings(document)
        except services.ConfigError as exc:
            self.report(exc.errors)
            return cleaned
        self.settings_document = document
        return cleaned

    def report(self, errors: Errors) -> None:
        """Each error on the field its path names, prefixed by the rest of the path (`window_s: ...`)."""
        for path, messages in errors.items():
            block = path.split(".", 1)[0].split("[", 1)[0]
            field = block if block in self.fields else None
            prefix = path[len(block):].lstrip(".") if field else path
            for message in messages:
                self.add_error(field, f"{prefix}: {message}" if prefix else message)
