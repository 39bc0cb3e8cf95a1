from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from rest_framework import serializers

from cases.models import Commodity
from core.api.filters import BaseFilterSet, TextSearchFilter, several
from core.api.validation import normalize_hs_code
from shipments.models import PARTY_ROLES, Licence, LicenceStatus, Shipment, ShipmentStatus

HS_PREFIX = re.compile(r"^\d{1,10}$")


class _UpperField(forms.CharField):
    def to_python(self, value: Any) -> str:
        return (super().to_python(value) or "").upper()


class CountryFilter(filters.CharFilter):
    """An ISO alpha-2 code, matched whatever its case in the query (`cn` finds `CN`)."""

    field_class = _UpperField


class ShipmentFilterSet(BaseFilterSet):
    q_fields = ("reference", "declared_description")

    commodity = filters.CharFilter(field_name="commodity_id")
    hs_code = filters.CharFilter(method="filter_hs_code", label="HS code prefix (dots allowed)")
    status = filters.MultipleChoiceFilter(choices=ShipmentStatus.choices)
    origin_country = CountryFilter()
    destination_country = CountryFilter()
    transit_country = CountryFilter(method="filter_transit_country", label="A country the shipment passed")
    consignor = filters.UUIDFilter(field_name="consignor_id")
    consignee = filters.UUIDFilter(field_name="consignee_id")
    party = filters.UUIDFilter(method="filter_party", label="Entity id in any party role")
    departed_after = filters.DateFilter(field_name="departed_on", lookup_expr="gte")
    departed_before = filters.DateFilter(field_name="departed_on", lookup_expr="lte")
    quantity_min = filters.NumberFilter(field_name="quantity_kg", lookup_expr="gte")
    quantity_max = filters.NumberFilter(field_name="quantity_kg", lookup_expr="lte")
    # A boolean in the schema; the project's filter backend makes it strict (true/false/1/0, anything else a 400).
    has_licence = filters.BooleanFilter(method="filter_has_licence", label="Whether a licence is named")
    case = filters.UUIDFilter(field_name="cases__id")
    source = filters.CharFilter()

    class Meta:
        model = Shipment
        fields: list[str] = []

    @several
    def filter_hs_code(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        prefixes = [normalize_hs_code(one) for one in value]
        if not all(HS_PREFIX.match(prefix) for prefix in prefixes):
            raise serializers.ValidationError({"hs_code": ["Expected the start of an HS code: digits, dots allowed."]})
        query = Q()
        for prefix in prefixes:
            query |= Q(hs_code__startswith=prefix)
        return queryset.filter(query)

    def filter_has_licence(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.filter(licence__isnull=not value)

    @several
    def filter_transit_country(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        # `overlap` on the array uses its GIN index.
        return queryset.filter(transit_countries__overlap=value)

    @several
    def filter_party(self, queryset: QuerySet, name: str, value: list[Any]) -> QuerySet:
        query = Q()
        for role in PARTY_ROLES:
            query |= Q(**{f"{role}_id__in": value})
        return queryset.filter(query)


class LicenceFilterSet(BaseFilterSet):
    q_fields = ("number",)

    holder = filters.UUIDFilter(field_name="holder_id")
    commodity = filters.CharFilter(field_name="commodity_id")
    status = filters.MultipleChoiceFilter(choices=LicenceStatus.choices)
    valid_on = filters.DateFilter(method="filter_valid_on", label="Valid on this date (within valid_from..valid_to)")

    class Meta:
        model = Licence
        fields: list[str] = []

    def filter_valid_on(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        # One day at a time: several days are each day's licences, joined (core.api.filters.AnyOfFilter).
        return queryset.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=value),
                               Q(valid_to__isnull=True) | Q(valid_to__gte=value))


class CommodityFilterSet(filters.FilterSet):
    """Reference data has no timestamps: `q` (code, name, HS code) and `licence_required` only."""

    q = TextSearchFilter(method="filter_q", label="Free-text search")
    licence_required = filters.BooleanFilter()

    class Meta:
        model = Commodity
        fields: list[str] = []

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = Q(code__icontains=value) | Q(name__icontains=value)
        hs = normalize_hs_code(value)
        if hs.isdigit():
            query |= Q(hs_codes__contains=[hs])
        return queryset.filter(query)
