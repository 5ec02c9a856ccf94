"""The Verdict admin: the detection's verdicts, read-only, newest first, each page saying in words why it was
given; operators lift one with the page's Lift button or the list's action (metrics.abuse.verdicts.lift_verdict)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from metrics.abuse.verdicts import VerdictLifted, lift_verdict
from metrics.models import Verdict

FEATURE_WORDS = {"requests": "requests", "auth_failures": "401/403 answers", "not_found": "404 answers",
                 "distinct_paths": "distinct paths", "kilobytes": "kilobytes in and out",
                 "distinct_addresses": "distinct client addresses", "isolation": "isolation forest score"}


def _figure(value: Any) -> str:
    return "–" if value is None else f"{float(value):g}"


def reasons(verdict: Verdict) -> SafeString:
    """Each feature in a sentence: its value in the window against the client's baseline and the population."""
    rows = []
    for feature in verdict.features:
        name = FEATURE_WORDS.get(str(feature.get("name")), str(feature.get("name")))
        baseline = feature.get("baseline")
        own = (f"its own usual {_figure(baseline)}" if baseline is not None
               else "no history of its own yet (a newcomer)")
        rows.append((name, _figure(feature.get("value")), own, _figure(feature.get("population")),
                     _figure(feature.get("score"))))
    return format_html("<ul class='verdict-reasons'>{}</ul>", format_html_join(
        "", "<li><strong>{}</strong>: {} in the window, against {} and the route's clients' median {} "
            "(score {})</li>", rows))


class LiftForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60}),
                             help_text="Why (kept with the verdict and in the audit trail).")


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    """Read-only: verdicts are the detection's; lifting is the one thing an operator does to them."""

    list_display = ("created_at", "route", "client", "kind", "score", "action", "expires_at", "in_force")
    list_filter = ("kind", "action", "route")
    search_fields = ("client", "route")
    ordering = ("-created_at", "-id")
    fields = ("why", "route", "client", "kind", "score", "model_version", "action", "factor", "window_start",
              "window_end", "created_at", "expires_at", "in_force", "lifted_at", "lifted_by", "lift_reason")
    readonly_fields = fields
    actions = ["lift_selected"]
    change_form_template = "admin/metrics/verdict/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="in force", boolean=True)
    def in_force(self, verdict: Verdict) -> bool:
        return verdict.lifted_at is None and verdict.expires_at > timezone.now()

    @admin.display(description="why")
    def why(self, verdict: Verdict) -> SafeString:
        kind = verdict.get_kind_display()
        return format_html("<p>{} by {} on route {} (score {}, model {}):</p>{}", kind, verdict.client,
                           verdict.route, _figure(verdict.score), verdict.model_version, reasons(verdict))

    def get_urls(self) -> list[URLPattern]:
        lift = path("<int:pk>/lift/", self.admin_site.admin_view(self.lift_view), name="metrics_verdict_lift")
        return [lift, *super().get_urls()]

    def lift_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the verdict's reasons and a reason field; POST: lift it and go back to its page."""
        verdict = get_object_or_404(Verdict, pk=pk)
        if not self.has_change_permission(request, verdict):
            raise PermissionDenied("Lifting a verdict needs the operator role.")
        form = LiftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                lift_verdict(verdict, form.cleaned_data["reason"], actor=request.user, source="admin")
                messages.success(request, f"Verdict {pk} lifted: the gateways stop applying it.")
            except VerdictLifted as exc:
                messages.warning(request, str(exc))
            return HttpResponseRedirect(reverse("admin:metrics_verdict_change", args=[pk]))
        context = {**self.admin_site.each_context(request), "title": f"Lift verdict {pk}", "verdict": verdict,
                   "why": self.why(verdict), "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/metrics/verdict/lift.html", context)

    @admin.action(description="Lift the selected verdicts", permissions=["change"])
    def lift_selected(self, request: HttpRequest, queryset: Any) -> None:
        lifted = 0
        for verdict in queryset.filter(lifted_at__isnull=True):
            lift_verdict(verdict, "lifted from the verdict list", actor=request.user, source="admin")
            lifted += 1
        messages.success(request, f"{lifted} verdict(s) lifted.")
