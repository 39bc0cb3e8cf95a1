"""Persons, organisations and links: each write is one call of its service (entities.services)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from audit.services import record
from core import policy
from core.api.viewsets import BaseModelViewSet, ScopeInQueryMixin
from entities import services
from entities.filtersets import LinkFilterSet, OrganizationFilterSet, PersonFilterSet
from entities.models import Entity, Link, Organization, Person

from .serializers import LinkSerializer, OrganizationSerializer, PersonSerializer, case_refs, in_cluster


class EntityViewSet(ScopeInQueryMixin, BaseModelViewSet):
    """Persons or organisations: one table, seen through its proxy so the other type is a 404 here."""

    create_action = "entity.change"
    create_service: Callable[..., Entity]  # the service that creates this type
    export_formats = ("csv", "xlsx", "ftm")

    def export_lines(self, obj: Entity) -> list[dict[str, Any]]:
        from imports.ftm_export import entity_lines

        return entity_lines(obj)

    def get_queryset(self) -> QuerySet:
        # No `ordering` on the view: a fuzzy `name` filter ranks by similarity unless `ordering=` is given.
        # A record's cases and whether it is in an identity cluster are columns of its own query (not queries of
        # their own), each only when its field is answered.
        queryset = super().get_queryset().select_related("agency").order_by("name", "id")
        selection = self.field_selection()
        wanted = set(selection.names) if selection is not None else {"cases", "same_as"}
        if "cases" in wanted:
            queryset = queryset.annotate(case_refs=case_refs(self.request.user))
        if "same_as" in wanted:
            queryset = queryset.annotate(in_cluster=in_cluster())
        return queryset

    def creates_visible(self) -> bool:
        # Created in the caller's own agency (owner_agency), whose persons and organisations its users all see.
        return policy.sees_own_agency(self.request.user, self.queryset.model)

    def perform_create(self, serializer: Any) -> Any:
        entity = self.create_service(agency=self.owner_agency(), actor=self.request.user,
                                     data=serializer.validated_data)
        # A record just created is in no case and no identity cluster yet (as its transaction holds it): the
        # answer need not look them up.
        entity.case_refs = []  # type: ignore[attr-defined]
        entity.same_as_refs = []  # type: ignore[attr-defined]
        return entity

    def perform_update(self, serializer: Any) -> Any:
        return services.entity_update(entity=serializer.instance, actor=self.request.user,
                                      data=serializer.validated_data)

    def perform_archive(self, instance: Entity) -> None:
        services.entity_archive(entity=instance, actor=self.request.user)


class PersonViewSet(EntityViewSet):
    queryset = Person.objects.all()
    serializer_class = PersonSerializer
    filterset_class = PersonFilterSet
    create_service = staticmethod(services.person_create)
    export_kind = "persons"
    ordering_fields = ["name", "birth_date", "created_at", "updated_at"]

    def on_retrieve(self, instance: Person) -> None:
        record(action="view", obj=instance, actor=self.request.user, agency=instance.agency)


class OrganizationViewSet(EntityViewSet):
    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    filterset_class = OrganizationFilterSet
    create_service = staticmethod(services.organization_create)
    export_kind = "organizations"
    ordering_fields = ["name", "kind", "jurisdiction", "incorporated_on", "created_at", "updated_at"]


class LinkViewSet(BaseModelViewSet):
    queryset = Link.objects.select_related("agency", "source", "target")
    serializer_class = LinkSerializer
    filterset_class = LinkFilterSet
    ordering_fields = ["kind", "start_date", "end_date", "created_at", "updated_at"]
    ordering = ["-created_at", "id"]
    create_action = "link.change"
    export_kind = "links"
    export_formats = ("csv", "xlsx", "ftm")

    def export_lines(self, obj: Link) -> list[dict[str, Any]]:
        from imports.ftm_export import link_lines

        return link_lines(obj)

    def perform_create(self, serializer: Any) -> Any:
        return services.link_create(agency=self.owner_agency(), actor=self.request.user,
                                    data=serializer.validated_data)

    def perform_update(self, serializer: Any) -> Any:
        return services.link_update(link=serializer.instance, actor=self.request.user, data=serializer.validated_data)

    def perform_archive(self, instance: Link) -> None:
        services.link_archive(link=instance, actor=self.request.user)
