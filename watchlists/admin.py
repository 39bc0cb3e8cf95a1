"""Watchlists and their entries in the admin, read-only: list imports write them (`watchlists.services`). Rows come
from `core.policy`, as in the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html

from core.admin import PolicyAdminMixin
from entities.models import EntityType

from .models import Watchlist, WatchlistEntry

WATCHLIST_FIELDS = ("agency", "source", "kind", "entries", "delisted", "imported_at", "job", "id", "version",
                    "created_at", "updated_at")
ENTRY_FIELDS = ("watchlist", "entity_link", "programmes", "remarks", "listed_at", "delisted_at")


class ReadOnlyAdmin(PolicyAdminMixin, admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Watchlist)
class WatchlistAdmin(ReadOnlyAdmin):
    list_display = ("source", "kind", "entries", "delisted", "imported_at", "agency")
    list_filter = ("kind",)
    list_select_related = ("agency",)
    search_fields = ("source",)
    fields = WATCHLIST_FIELDS
    readonly_fields = WATCHLIST_FIELDS


class DelistedFilter(admin.SimpleListFilter):
    title = "delisted"
    parameter_name = "delisted"

    def lookups(self, request, model_admin):
        return (("yes", "Delisted"), ("no", "Listed now"))

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(delisted_at__isnull=self.value() == "no")
        return queryset


class ProgrammeFilter(admin.SimpleListFilter):
    title = "programme"
    parameter_name = "programme"

    def lookups(self, request, model_admin):
        entries = model_admin.get_queryset(request)
        seen = sorted({p for programmes in entries.values_list("programmes", flat=True).distinct() for p in programmes})
        return [(p, p) for p in seen]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        return queryset.filter(programmes__contains=[self.value()]) if self.value() else queryset


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(ReadOnlyAdmin):
    list_display = ("entity_link", "watchlist", "programmes_shown", "listed_at", "delisted_at")
    list_filter = (("watchlist", admin.RelatedOnlyFieldListFilter), DelistedFilter, ProgrammeFilter)
    list_select_related = ("watchlist", "entity")
    search_fields = ("entity__name", "remarks")
    ordering = ("watchlist", "entity__name", "id")
    list_per_page = 50
    fields = ENTRY_FIELDS
    readonly_fields = ENTRY_FIELDS

    @admin.display(description="entity", ordering="entity__name")
    def entity_link(self, obj: WatchlistEntry) -> Any:
        entity = obj.entity
        kind = "person" if entity.type == EntityType.PERSON else "organization"
        return format_html('<a href="{}">{}</a>', reverse(f"admin:entities_{kind}_change", args=[entity.pk]),
                           entity.name)

    @admin.display(description="programmes")
    def programmes_shown(self, obj: WatchlistEntry) -> str:
        return ", ".join(obj.programmes)
