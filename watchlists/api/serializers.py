"""Watchlists (API.md § Watchlists): read-only, made by list imports."""

from __future__ import annotations

from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer
from watchlists.models import Watchlist


class WatchlistSerializer(AgencyOwnedSerializer):
    """A sanctions or watch list of your agency: its name (the import's source), its kind, how many entries it
    lists now and how many a later import delisted, and the import job that last brought it up to date."""

    class Meta:
        model = Watchlist
        fields = [*BASE_READ_ONLY, "agency", "source", "kind", "entries", "delisted", "imported_at", "job"]
        read_only_fields = fields
