"""Filters of the alerts list (API.md § Alerts)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from core.api.filters import BaseFilterSet, several

from .models import Alert, AlertRule, AlertStatus, Severity


class AlertFilterSet(BaseFilterSet):
    q_fields = ("label", "explanation")

    rule = filters.MultipleChoiceFilter(choices=AlertRule.choices)
    severity = filters.MultipleChoiceFilter(choices=Severity.choices)
    status = filters.MultipleChoiceFilter(choices=AlertStatus.choices)
    subject = filters.UUIDFilter(method="filter_subject", label="Shipment, person or organisation id: its alerts")
    case = filters.UUIDFilter(field_name="case_id", label="Case id: the alerts attached to it")

    class Meta:
        model = Alert
        fields: list[str] = []

    @several
    def filter_subject(self, queryset: QuerySet, name: str, value: list[UUID]) -> QuerySet:
        return queryset.filter(Q(shipment_id__in=value) | Q(entity_id__in=value))
