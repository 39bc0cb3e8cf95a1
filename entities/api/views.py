from __future__ import annotations

from django.db.models import QuerySet

from audit.services import record
from core.api.viewsets import BaseModelViewSet
from entities.filtersets import LinkFilterSet, OrganizationFilterSet, PersonFilterSet
from entities.models import Link, Organization, Person

from .serializers import LinkSerializer, OrganizationSerializer, PersonSerializer, visible_case_parties


class EntityViewSet(BaseModelViewSet):
    """Persons or organisations: one table, seen through its proxy so the other type is a 404 here."""

    create_action = "entity.change"

    def get_queryset(self) -> QuerySet:
        # No `ordering` on the view: a fuzzy `name` filter ranks by similarity unless `ordering=` is given.
        return (super().get_queryset().select_related("agency")
                .prefetch_related(visible_case_parties(self.request.user)).order_by("name", "id"))


class PersonViewSet(EntityViewSet):
    queryset = Person.objects.all()
    serializer_class = PersonSerializer
    filterset_class = PersonFilterSet
    ordering_fields = ["name", "birth_date", "created_at", "updated_at"]

    def on_retrieve(self, instance: Person) -> None:
        record(action="view", obj=instance, actor=self.request.user, agency=instance.agency)


class OrganizationViewSet(EntityViewSet):
    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    filterset_class = OrganizationFilterSet
    ordering_fields = ["name", "kind", "jurisdiction", "incorporated_on", "created_at", "updated_at"]


class LinkViewSet(BaseModelViewSet):
    queryset = Link.objects.select_related("agency", "source", "target")
    serializer_class = LinkSerializer
    filterset_class = LinkFilterSet
    ordering_fields = ["kind", "start_date", "end_date", "created_at", "updated_at"]
    ordering = ["-created_at", "id"]
    create_action = "link.change"
