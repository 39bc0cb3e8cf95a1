from __future__ import annotations

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters


class BaseFilterSet(filters.FilterSet):
    """`q`, `created_after` and `updated_after` on every list; `q` searches `q_fields`."""

    q = filters.CharFilter(method="filter_q", label="Free-text search")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    updated_after = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    q_fields: tuple[str, ...] = ()

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = Q()
        for field in self.q_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query) if self.q_fields else queryset
