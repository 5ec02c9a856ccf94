"""Documents of the backend health API: a backend's state with its recent probes and changes, and the override."""
from __future__ import annotations

from rest_framework import serializers

from routes.health.models import HealthEvent, HealthProbe, HealthState


class HealthProbeSerializer(serializers.ModelSerializer):
    """One active probe and its outcome."""

    reason = serializers.CharField(source="text", help_text="`status 503`, `timeout`, `refused`, `reset`, "
                                                            "`invalid` or `error`.")

    class Meta:
        model = HealthProbe
        fields = ("at", "ok", "status_code", "latency_ms", "reason", "detail")


class HealthEventSerializer(serializers.ModelSerializer):
    """A state change (from probes) or an override set or cleared by an operator."""

    class Meta:
        model = HealthEvent
        fields = ("at", "source", "from_state", "to_state", "reason", "actor_name")


class BackendHealthSerializer(serializers.Serializer):
    """A backend's health: the probes' verdict, the operator's override and whether it gets traffic."""

    backend = serializers.IntegerField(help_text="The backend's id.")
    route = serializers.CharField(help_text="The name of the backend's route.")
    url = serializers.CharField()
    health_check_path = serializers.CharField(allow_null=True, help_text="Null: the backend is not probed.")
    state = serializers.ChoiceField(choices=HealthState.choices,
                                    help_text="What the probes concluded; `unknown` before the first verdict.")
    reason = serializers.CharField(help_text="Why it is in that state, like `status 503` or `refused`.")
    override = serializers.ChoiceField(choices=["up", "down"], allow_null=True,
                                       help_text="Set by an operator, wins over the probes; null: none.")
    override_by = serializers.CharField(allow_blank=True)
    override_at = serializers.DateTimeField(allow_null=True)
    healthy = serializers.BooleanField(help_text="Whether the gateways send it traffic (override applied).")
    consecutive_successes = serializers.IntegerField()
    consecutive_failures = serializers.IntegerField()
    last_probe_at = serializers.DateTimeField(allow_null=True)
    last_change_at = serializers.DateTimeField(allow_null=True)
    probes = HealthProbeSerializer(many=True, help_text="The latest probes, newest first.")
    changes = HealthEventSerializer(many=True, help_text="The latest state changes and overrides, newest first.")


class HealthOverrideSerializer(serializers.Serializer):
    """Force the backend up or down whatever its probes say, or clear that with null."""

    override = serializers.ChoiceField(choices=["up", "down"], allow_null=True)
