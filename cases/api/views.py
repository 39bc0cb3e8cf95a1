from __future__ import annotations

from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, QuerySet
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, as in DRF's views

from accounts.models import User
from audit.models import AuditEvent
from audit.services import record
from cases import services
from cases.filtersets import CaseFilterSet
from cases.models import Case, CaseParty, CaseShare, Commodity, Note
from core import policy
from core.api.viewsets import BaseModelViewSet
from core.compiled import Correlated, kept_subquery

from .serializers import (
    CaseSerializer,
    NoteSerializer,
    PartySerializer,
    ShareSerializer,
    TimelineEventSerializer,
    TimelineNoteSerializer,
)

CASE_UUID = OpenApiParameter("case_pk", type=str, location=OpenApiParameter.PATH, description="Case id")


def case_member_usernames() -> Correlated:
    return kept_subquery(("case member usernames",), Case, lambda: ArraySubquery(
        User.objects.filter(member_cases=OuterRef("pk")).order_by("username").values("username")))


def case_commodity_codes() -> Correlated:
    return kept_subquery(("case commodity codes",), Case, lambda: ArraySubquery(
        Commodity.objects.filter(cases=OuterRef("pk")).order_by("code").values("code")))


class CaseViewSet(BaseModelViewSet):
    queryset = Case.objects.select_related("agency", "unit", "lead", "created_by")
    serializer_class = CaseSerializer
    filterset_class = CaseFilterSet
    ordering_fields = ["reference", "title", "status", "priority", "opened_on", "created_at", "updated_at"]
    ordering = ["-opened_on", "-created_at"]
    create_action = "case.create"
    conflict_actions = ("update", "partial_update")  # a status move the machine forbids (API.md § Cases)

    def on_retrieve(self, instance: Case) -> None:
        record(action="view", obj=instance, actor=self.request.user, agency=instance.agency,
               case_id=instance.pk)

    def get_queryset(self) -> QuerySet:
        # The members' usernames and the commodities' codes are columns of the case's own query (their SQL kept
        # once), answered by the serializer's SlugsManyRelatedField: no query of their own for a case or a page.
        return super().get_queryset().annotate(members_slugs=case_member_usernames(),
                                               commodities_slugs=case_commodity_codes())

    def check_can_change(self, obj: Case) -> None:
        if not policy.case_writable_seen(self.request.user, obj, "case.change"):  # obj: get_locked_object's
            raise exceptions.PermissionDenied()

    def check_can_archive(self, obj: Case) -> None:
        if not policy.case_writable_seen(self.request.user, obj, "case.archive"):
            raise exceptions.PermissionDenied()

    def perform_create(self, serializer: Any) -> Any:
        return services.case_create(agency=self.owner_agency(), actor=self.request.user,
                                    data=serializer.validated_data)

    def perform_update(self, serializer: Any) -> Any:
        case = services.case_update(case=serializer.instance, actor=self.request.user, data=serializer.validated_data)
        for name in ("members", "commodities"):
            if name in serializer.validated_data:  # the column read before the change is out of date: the
                case.__dict__.pop(f"{name}_slugs", None)  # answer reads the relation
        return case

    def perform_archive(self, instance: Case) -> None:
        services.case_archive(case=instance, actor=self.request.user)

    @extend_schema(responses=PolymorphicProxySerializer(
        component_name="TimelineEntry", serializers={"event": TimelineEventSerializer, "note": TimelineNoteSerializer},
        resource_type_field_name="type", many=True,
    ))
    @action(detail=True, methods=["get"], filter_backends=[])  # a page of the case's entries: no case filters
    def timeline(self, request, pk=None):
        """Audit events and notes of the case, newest first."""
        case = self.get_object()
        events = [
            {"at": e.at, "type": "event", "actor": e.actor, "action": e.action, "object_type": e.object_type,
             "object_id": e.object_id, "changes": e.changes}
            for e in AuditEvent.objects.filter(case_id=case.pk).exclude(action="view").order_by("-at")[:2000]
        ]
        notes = [
            {"at": n.created_at, "type": "note", "actor": n.author.username, "action": "note",
             "object_type": "note", "object_id": str(n.pk), "body": n.body}
            for n in case.notes.filter(archived=False).select_related("author").order_by("-created_at")[:2000]
        ]
        entries = sorted(events + notes, key=lambda e: e["at"], reverse=True)
        # DRF paginates any sequence (Django's Paginator); its stubs accept only a QuerySet.
        page: list[dict[str, Any]] | None = self.paginate_queryset(entries)  # type: ignore[arg-type]
        return self.get_paginated_response(page)


class CaseChildViewSet(BaseModelViewSet):
    """A record that belongs to a case: scoped by its case, created inside it."""

    lookup_url_kwarg = "pk"
    create_action = "case.change"

    def get_case(self) -> Case:
        if not hasattr(self, "_case"):
            self._case = get_object_or_404(policy.cases_visible(self.request.user), pk=self.kwargs["case_pk"])
        return self._case

    def scoped_queryset(self):
        return super().scoped_queryset().filter(case=self.get_case())

    def extra_serializer_context(self) -> dict[str, Any]:
        return {"case": self.get_case()} if "case_pk" in self.kwargs else {}

    def check_can_create(self) -> None:
        if not policy.cases_writable(self.request.user, self.create_action).filter(pk=self.get_case().pk).exists():
            raise exceptions.PermissionDenied()


@extend_schema(parameters=[CASE_UUID])
class PartyViewSet(CaseChildViewSet):
    queryset = CaseParty.objects.select_related("case", "entity")
    serializer_class = PartySerializer
    create_action = "case.party"
    ordering_fields = ["created_at", "role", "custody_status"]
    filterset_fields = ["role", "custody_status"]

    def perform_create(self, serializer: Any) -> Any:
        return services.party_add(case=self.get_case(), actor=self.request.user, data=serializer.validated_data)

    def perform_update(self, serializer: Any) -> Any:
        return services.party_update(party=serializer.instance, actor=self.request.user,
                                     data=serializer.validated_data)

    def perform_archive(self, instance: CaseParty) -> None:
        services.party_archive(party=instance, actor=self.request.user)


@extend_schema(parameters=[CASE_UUID])
class NoteViewSet(CaseChildViewSet):
    queryset = Note.objects.select_related("case", "author")
    serializer_class = NoteSerializer
    create_action = "case.note"
    ordering_fields = ["created_at"]

    def perform_create(self, serializer: Any) -> Any:
        return services.note_create(case=self.get_case(), actor=self.request.user, data=serializer.validated_data)

    def perform_update(self, serializer: Any) -> Any:
        return services.note_update(note=serializer.instance, actor=self.request.user, data=serializer.validated_data)

    def perform_archive(self, instance: Note) -> None:
        services.note_archive(note=instance, actor=self.request.user)


@extend_schema(parameters=[CASE_UUID])
class ShareViewSet(CaseChildViewSet):
    # The unit's agency too: the `unit` field renders str(unit), which names its agency.
    queryset = CaseShare.objects.select_related("case", "agency", "unit__agency", "shared_by")
    serializer_class = ShareSerializer
    create_action = "case.share"
    ordering_fields = ["created_at"]
    read_refusal = "Only the owning agency's supervisors see a case's shares."

    def scoped_queryset(self):
        # `/shares/` is for the owning agency's supervisors (API.md), reading included: 403 for others.
        if not policy.cases_writable(self.request.user, "case.share").filter(pk=self.get_case().pk).exists():
            raise exceptions.PermissionDenied(self.read_refusal)
        return super().scoped_queryset()

    def perform_create(self, serializer: Any) -> Any:
        return services.share_create(case=self.get_case(), actor=self.request.user, data=serializer.validated_data)

    def perform_update(self, serializer: Any) -> Any:
        return services.share_update(share=serializer.instance, actor=self.request.user,
                                     data=serializer.validated_data)

    def perform_archive(self, instance: CaseShare) -> None:
        services.share_revoke(share=instance, actor=self.request.user)
