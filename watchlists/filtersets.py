"""Filters of watchlists (API.md § Watchlists)."""

from __future__ import annotations

from django_filters import rest_framework as filters

from core.api.filters import BaseFilterSet

from .models import Watchlist, WatchlistKind


class WatchlistFilterSet(BaseFilterSet):
    q_fields = ("source",)

    kind = filters.MultipleChoiceFilter(choices=WatchlistKind.choices)
    source = filters.CharFilter(field_name="source")

    class Meta:
        model = Watchlist
        fields: list[str] = []
