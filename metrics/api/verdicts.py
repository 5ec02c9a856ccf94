"""The verdicts API: `GET /api/verdicts/` (filters route, client, kind, active), `GET /api/verdicts/{id}/` (why:
each feature against the client's baseline and the population, the model, the action and its expiry) and
`POST /api/verdicts/{id}/lift/` (operators; audited)."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from metrics.abuse.verdicts import VerdictLifted, active, lift_verdict
from metrics.models import Verdict, VerdictKind
from routes.api.permissions import RolePermission
from routes.api.serializers import ErrorsSerializer


class VerdictFeatureSerializer(serializers.Serializer):
    """One feature of the judged window."""

    name = serializers.CharField(help_text="requests, auth_failures, not_found, distinct_paths, kilobytes, "
                                           "distinct_addresses, or isolation (the forest's score, 0.5 ordinary).")
    value = serializers.FloatField(help_text="Its value in the judged window.")
    baseline = serializers.FloatField(allow_null=True, help_text="The client's own median (null: a newcomer).")
    population = serializers.FloatField(help_text="The route's clients' median.")
    score = serializers.FloatField(help_text="How far above both, comparable to the route's threshold.")


class VerdictSerializer(serializers.ModelSerializer):
    """A verdict: who, on which route, what kind of abuse, why (features), and what the gateway does until when."""

    features = VerdictFeatureSerializer(many=True, help_text="The signature's features first, then the others "
                                                             "that deviated, worst first.")
    active = serializers.SerializerMethodField(help_text="In force now: not expired, not lifted.")

    class Meta:
        model = Verdict
        fields = ("id", "created_at", "route", "client", "kind", "score", "model_version", "action", "factor",
                  "window_start", "window_end", "expires_at", "active", "lifted_at", "lifted_by", "lift_reason",
                  "features")

    def get_active(self, verdict: Verdict) -> bool:
        return verdict.lifted_at is None and verdict.expires_at > timezone.now()


class VerdictFilterSerializer(serializers.Serializer):
    """The list's query string; every given filter must match."""

    route = serializers.CharField(required=False, help_text="A route's name.")
    client = serializers.CharField(required=False, help_text="consumer:<name>, sub:<subject>, key:<hash> or "
                                                             "ip:<address>.")
    kind = serializers.ChoiceField(choices=VerdictKind.values, required=False)
    active = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text="true: in force now; false: expired or lifted.")


class LiftSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="",
                                   help_text="Why (kept with the verdict and in the audit trail).")


@extend_schema_view(
    list=extend_schema(summary="The abuse verdicts, newest first", parameters=[VerdictFilterSerializer]),
    retrieve=extend_schema(summary="One verdict and why it was given"),
)
class VerdictViewSet(viewsets.ReadOnlyModelViewSet):
    """The detection's verdicts (metrics.abuse); viewers read them, operators lift them."""

    queryset = Verdict.objects.all()
    serializer_class = VerdictSerializer
    permission_classes = [RolePermission]
    read_permission = "metrics.view_verdict"
    write_permission = "metrics.change_verdict"
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self) -> QuerySet[Verdict]:
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        params = VerdictFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        chosen: dict[str, Any] = dict(params.validated_data)
        flag = chosen.pop("active", None)
        queryset = queryset.filter(**chosen)
        return queryset if flag is None else active(queryset, timezone.now(), flag)

    @extend_schema(summary="Lift a verdict: the gateways stop applying it", request=LiftSerializer,
                   responses={200: VerdictSerializer,
                              409: OpenApiResponse(ErrorsSerializer, description="Lifted already.")})
    @action(detail=True, methods=["post"])
    def lift(self, request: Request, pk: str | None = None) -> Response:
        params = LiftSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            verdict = lift_verdict(self.get_object(), params.validated_data["reason"], actor=request.user,
                                   source="api")
        except VerdictLifted as exc:
            return Response({"errors": {"": [str(exc)]}}, status=status.HTTP_409_CONFLICT)
        return Response(VerdictSerializer(verdict).data)



