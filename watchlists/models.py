"""Watchlists (API.md § Watchlists): sanctions and watch lists an agency imports as reference data.

A list's entries are persons and organisations of the agency's master index (so that search, the graph and
cross-referencing see them as any record); `WatchlistEntry` ties an entry to its list with what the list says
of it (programmes), and when it was listed and delisted. `Entity.lists` names the lists that list a record now.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from core.models import AgencyOwnedModel


class WatchlistKind(models.TextChoices):
    OFAC_SDN = "ofac_sdn"
    FTM = "ftm"


class Watchlist(AgencyOwnedModel):
    source = models.CharField(max_length=100, help_text="The list's name, e.g. ofac-sdn (the import's source)")
    kind = models.CharField(max_length=10, choices=WatchlistKind.choices)
    entries = models.PositiveIntegerField(default=0, help_text="Entries listed now")
    delisted = models.PositiveIntegerField(default=0, help_text="Entries a later import no longer lists")
    imported_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("imports.ImportJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["source"]
        constraints = [models.UniqueConstraint(fields=["agency", "source"], name="watchlist_source_per_agency")]

    def __str__(self) -> str:
        return self.source


class WatchlistEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    watchlist = models.ForeignKey(Watchlist, on_delete=models.PROTECT, related_name="entry_set")
    entity = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, related_name="watchlist_entries")
    programmes = ArrayField(models.CharField(max_length=100), default=list, blank=True,
                            help_text="The list's programmes for the entry (e.g. SDN's SDGT, IRAN)")
    remarks = models.TextField(blank=True)
    listed_at = models.DateTimeField()
    delisted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name_plural = "watchlist entries"
        ordering = ["watchlist", "id"]
        constraints = [models.UniqueConstraint(fields=["watchlist", "entity"], name="watchlist_entry_once")]

    def __str__(self) -> str:
        return f"{self.entity_id} on {self.watchlist_id}"
