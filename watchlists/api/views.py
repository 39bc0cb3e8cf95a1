"""Watchlists (API.md § Watchlists): scoped by `core.policy`, read-only (imports write them, through
`watchlists.services`)."""

from __future__ import annotations

from core.api.viewsets import ReadOnlyViewSet
from watchlists.filtersets import WatchlistFilterSet
from watchlists.models import Watchlist

from .serializers import WatchlistSerializer


class WatchlistViewSet(ReadOnlyViewSet):
    """Your agency's sanctions and watch lists. Their entries are persons and organisations with `lists` naming the
    list (`/persons/?list=<source>`, `/organizations/?list=<source>`)."""

    queryset = Watchlist.objects.select_related("agency")
    serializer_class = WatchlistSerializer
    filterset_class = WatchlistFilterSet
    ordering_fields = ["source", "imported_at", "entries", "created_at"]
    ordering = ["source", "id"]
