from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from rest_framework import viewsets

from cases.models import Commodity
from core.api.export import ExportMixin
from core.api.http import HttpHabitsMixin
from core.api.viewsets import BaseModelViewSet, ScopeInQueryMixin
from entities.models import Entity
from shipments import services
from shipments.filtersets import CommodityFilterSet, LicenceFilterSet, ShipmentFilterSet
from shipments.models import PARTY_ROLES, Licence, Shipment, ShipmentLeg

from .serializers import CommoditySerializer, LicenceSerializer, ShipmentSerializer, visible_cases_prefetch

# A party is shown as {type, id, name}: the rest of its row is not read.
_BRIEF = {"id", "type", "name"}


def _brief(*relations: str) -> list[str]:
    return [f"{relation}__{field.name}" for relation in relations
            for field in Entity._meta.concrete_fields if field.name not in _BRIEF]


class PageFirstMixin:
    """Lists pick the page's ids on the table alone, then read those rows with their joins (a "deferred join").

    Sorting and limiting a query that also joins the four parties lets PostgreSQL join thousands of rows
    before it limits them to a page (it does when many rows tie on the sort key, as shipments without a
    departure date do); ids first keeps the joins to the page's own rows. One more query, constant in size.
    """

    def paginate_queryset(self, queryset: QuerySet) -> list[Any] | None:
        ids = queryset.select_related(None).prefetch_related(None).values_list("pk", flat=True)
        page = super().paginate_queryset(ids)  # type: ignore[misc]
        if page is None:
            return None
        rows = {row.pk: row for row in queryset.order_by().filter(pk__in=list(page))}
        return [rows[pk] for pk in page if pk in rows]


class ShipmentViewSet(PageFirstMixin, ScopeInQueryMixin, BaseModelViewSet):
    queryset = (
        Shipment.objects.select_related("agency", *PARTY_ROLES)
        .defer(*_brief(*PARTY_ROLES))
        # Not the legs' Meta ordering: it names the shipment, which would join the shipments again to sort.
        .prefetch_related(Prefetch("legs", queryset=ShipmentLeg.objects.order_by("shipment_id", "seq")))
    )
    serializer_class = ShipmentSerializer
    filterset_class = ShipmentFilterSet
    ordering_fields = ["departed_on", "quantity_kg", "declared_value", "reference", "created_at", "updated_at"]
    ordering = ["-departed_on", "-created_at"]
    create_action = "entity.change"
    export_kind = "shipments"

    def scoped_queryset(self) -> QuerySet:
        # Case ids are the caller's visible cases only (one query for the whole page).
        return super().scoped_queryset().prefetch_related(visible_cases_prefetch(self.request.user))

    def perform_create(self, serializer: Any) -> Any:
        return services.shipment_create(agency=self.owner_agency(), actor=self.request.user,
                                        data=serializer.validated_data)

    def perform_update(self, serializer: Any) -> Any:
        return services.shipment_update(shipment=serializer.instance, actor=self.request.user,
                                        data=serializer.validated_data)

    def perform_archive(self, instance: Shipment) -> None:
        services.shipment_archive(shipment=instance, actor=self.request.user)


class LicenceViewSet(ScopeInQueryMixin, BaseModelViewSet):
    queryset = Licence.objects.select_related("agency", "holder", "end_user").defer(*_brief("holder", "end_user"))
    serializer_class = LicenceSerializer
    filterset_class = LicenceFilterSet
    ordering_fields = ["number", "valid_from", "valid_to", "created_at", "updated_at"]
    ordering = ["-valid_from", "number"]
    create_action = "entity.change"

    def perform_create(self, serializer: Any) -> Any:
        return services.licence_create(agency=self.owner_agency(), actor=self.request.user,
                                       data=serializer.validated_data)

    def perform_update(self, serializer: Any) -> Any:
        return services.licence_update(licence=serializer.instance, actor=self.request.user,
                                       data=serializer.validated_data)

    def perform_archive(self, instance: Licence) -> None:
        services.licence_archive(licence=instance, actor=self.request.user)


class CommodityViewSet(ExportMixin, HttpHabitsMixin, viewsets.ReadOnlyModelViewSet):
    """Reference data, the same for every agency: any signed-in user reads it, nobody writes it here."""

    queryset = Commodity.objects.all()
    serializer_class = CommoditySerializer
    filterset_class = CommodityFilterSet
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9_-]+"
    ordering_fields = ["code", "name", "controlled_since"]
    ordering = ["code"]
