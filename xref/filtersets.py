"""Filters of cross-referencing's lists (API.md § Cross-referencing): matches, runs and deconfliction hits."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from cases.models import CaseParty
from core import policy
from core.api.filters import BaseFilterSet, several
from entities.models import EntityType

from .models import DeconflictionHit, Match, MatchStatus, RunStatus, XrefRun


class MatchFilterSet(BaseFilterSet):
    q_fields = ("left__name", "right__name", "explanation")

    status = filters.MultipleChoiceFilter(choices=MatchStatus.choices)
    min_score = filters.NumberFilter(field_name="score", lookup_expr="gte", label="Score at least this (0-1)")
    entity = filters.UUIDFilter(method="filter_entity", label="Entity id on either side")
    case = filters.UUIDFilter(method="filter_case",
                              label="Case id (visible to you): matches with a party of the case on either side")
    kind = filters.MultipleChoiceFilter(field_name="entity_type", choices=EntityType.choices,
                                        label="person or organization")

    class Meta:
        model = Match
        fields: list[str] = []

    @several
    def filter_entity(self, queryset: QuerySet, name: str, value: list[UUID]) -> QuerySet:
        return queryset.filter(Q(left_id__in=value) | Q(right_id__in=value))

    @several
    def filter_case(self, queryset: QuerySet, name: str, value: list[UUID]) -> QuerySet:
        # Only a case the caller sees: a hidden case's parties are not revealed by probing its id.
        parties = CaseParty.objects.filter(case_id__in=value, archived=False,
                                           case__in=policy.cases_visible(self.request.user)).values("entity_id")
        return queryset.filter(Q(left_id__in=parties) | Q(right_id__in=parties))


class RunFilterSet(BaseFilterSet):
    status = filters.MultipleChoiceFilter(choices=RunStatus.choices)
    case = filters.UUIDFilter(field_name="case_id", label="Case id (runs over its parties)")

    class Meta:
        model = XrefRun
        fields: list[str] = []


class HitFilterSet(BaseFilterSet):
    """Over the caller's own hits only: every filter names the caller's records or the other agency, never the
    other agency's record (the hit does not hold it)."""

    q_fields = ("entity__name",)

    entity = filters.UUIDFilter(field_name="entity_id", label="Your record's id")
    min_score = filters.NumberFilter(field_name="score", lookup_expr="gte", label="Score at least this (0-1)")
    other_agency = filters.CharFilter(field_name="other_agency__code", lookup_expr="iexact",
                                      label="The other agency's code")

    class Meta:
        model = DeconflictionHit
        fields: list[str] = []
