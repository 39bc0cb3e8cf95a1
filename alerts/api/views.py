"""Alerts (API.md § Alerts): scoped by `core.policy`; a user's change is one call of
`alerts.services.alert_update`, which checks, versions and audits."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.request import Request

from alerts import services
from alerts.filtersets import AlertFilterSet
from alerts.models import Alert, Severity
from core.api.filters import FilterBackend, StableOrdering
from core.api.viewsets import BaseModelViewSet

from .serializers import AlertSerializer

SEVERITY_RANK = Case(*(When(severity=value, then=Value(rank)) for rank, value in enumerate(Severity.values)),
                     default=Value(len(Severity.values)), output_field=IntegerField())


class AlertOrdering(StableOrdering):
    """`ordering=severity` ranks low < medium < high rather than by the words' spelling."""

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> Any:
        ordering = super().get_ordering(request, queryset, view)
        return [f"{term[:-len('severity')]}severity_rank" if term.lstrip("-") == "severity" else term
                for term in ordering or ()]


@extend_schema_view(
    partial_update=extend_schema(
        summary="Set an alert's status or case",
        description="`status` (open, dismissed, escalated) and `case` (a case of the alert's agency you may write; "
                    "null detaches); any other field sent is ignored. Analysts and up of the alert's agency; "
                    "audited as `update`. An `If-Match` with a stale version is a 412.",
        responses={200: AlertSerializer, 400: OpenApiResponse(description="Invalid input, by field"),
                   403: OpenApiResponse(description="Your role may not change alerts, or the alert is another "
                                                    "agency's, seen through a shared case (read-only)"),
                   404: OpenApiResponse(description="No such alert, or not visible to you"),
                   409: OpenApiResponse(description="The alert was withdrawn (archived)"),
                   412: OpenApiResponse(description="Stale If-Match")},
    ),
)
class AlertViewSet(BaseModelViewSet):
    """Red flags raised by the rules on your agency's shipments, persons and organisations (and another agency's,
    attached to a case it shared with you, read-only)."""

    queryset = (Alert.objects.select_related("agency", "status_changed_by")
                .annotate(entity_type=F("entity__type"), severity_rank=SEVERITY_RANK))
    serializer_class = AlertSerializer
    filterset_class = AlertFilterSet
    filter_backends = [FilterBackend, AlertOrdering]
    ordering_fields = ["created_at", "updated_at", "severity", "rule", "status"]
    ordering = ["-created_at", "id"]
    http_method_names = ["get", "patch", "head", "options"]

    def perform_update(self, serializer: Any) -> Any:
        return services.alert_update(self.request.user, serializer.instance, **serializer.validated_data)
