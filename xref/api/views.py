"""Runs, matches and deconfliction hits (API.md § Cross-referencing): scoped by `core.policy`; each write is one
call of `xref.services` (`run_create`, `match_decide`), which checks, audits and leaves the work to the outbox."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import request_user
from core import policy
from core.api.exceptions import PreconditionFailed
from core.api.schema import ETAG, IF_MATCH
from core.api.viewsets import ReadOnlyViewSet, etag_for, if_match_ok
from xref import services
from xref.filtersets import HitFilterSet, MatchFilterSet, RunFilterSet
from xref.models import DeconflictionHit, Match, XrefRun

from .serializers import DecisionSerializer, DeconflictionHitSerializer, MatchSerializer, XrefRunSerializer

NOT_FOUND = OpenApiResponse(description="No such object, or not visible to you")
REFUSED = OpenApiResponse(description="Your role may not do this (or the object is another agency's, read-only)")
BAD_INPUT = OpenApiResponse(description="Invalid input, by field")


@extend_schema_view(
    create=extend_schema(
        summary="Start a full cross-referencing pass",
        description="Over every record of your agency, or over one case's parties. Answers at once with the "
                    "queued run; follow it at `/xref/runs/{id}/` (`progress` 0-1).",
        request=XrefRunSerializer,
        responses={202: XrefRunSerializer, 400: BAD_INPUT, 403: REFUSED},
    ),
)
class XrefRunViewSet(mixins.CreateModelMixin, ReadOnlyViewSet):
    """Full cross-referencing passes of your agency (runs also happen by themselves after writes)."""

    queryset = XrefRun.objects.select_related("agency", "created_by")
    serializer_class = XrefRunSerializer
    filterset_class = RunFilterSet
    ordering_fields = ["created_at", "started_at", "finished_at", "status"]
    ordering = ["-created_at", "id"]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = request_user(request)
        if not policy.allows(user, "xref.run"):
            raise exceptions.PermissionDenied("Analysts, investigators, supervisors and agency admins start runs.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.run_create(agency=user.agency, user=user, case=serializer.validated_data.get("case"))
        response = Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)
        response["Location"] = reverse("xref-run-detail", args=[run.pk])
        return response


class MatchViewSet(ReadOnlyViewSet):
    """Candidate pairs of your agency's records with their score, per-feature similarities, explanation and
    decision. Only matches whose two records you see; a match with another agency's record never shows here."""

    queryset = Match.objects.select_related("left", "right", "decided_by")
    serializer_class = MatchSerializer
    filterset_class = MatchFilterSet
    ordering_fields = ["score", "created_at", "updated_at", "decided_at", "status"]
    ordering = ["-score", "id"]

    @extend_schema(
        summary="Decide a match",
        description="`confirmed` joins both records' identities (each shows in the other's `same_as`); `rejected` "
                    "is never proposed again; `pending` undoes an earlier decision (a cluster splits). Audited as "
                    "`decision`. An `If-Match` with a stale version is a 412.",
        request=DecisionSerializer,
        parameters=[IF_MATCH, ETAG],
        responses={200: MatchSerializer, 400: BAD_INPUT, 403: REFUSED, 404: NOT_FOUND,
                   409: OpenApiResponse(description="The match cannot take this decision now"),
                   412: OpenApiResponse(description="Stale If-Match")},
    )
    @action(detail=True, methods=["post"])
    def decision(self, request: Request, pk: Any = None) -> Response:
        user = request_user(request)
        match = self.get_object()
        if not policy.writable(user, Match).filter(pk=match.pk).exists():
            raise exceptions.PermissionDenied("Only analysts and up of the match's agency decide it.")
        parsed = DecisionSerializer(data=request.data, context=self.get_serializer_context())
        parsed.is_valid(raise_exception=True)
        with transaction.atomic():
            locked = Match.objects.select_for_update(of=("self",)).get(pk=match.pk)
            if not if_match_ok(request, locked):
                raise PreconditionFailed()
            decided = services.match_decide(user, locked, decision=parsed.validated_data["decision"],
                                            note=parsed.validated_data["note"])
        decided = self.get_queryset().get(pk=decided.pk)  # with its records' names, as the caller sees it
        response = Response(self.get_serializer(decided).data)
        response["ETag"] = etag_for(decided)
        return response


class DeconflictionHitViewSet(ReadOnlyViewSet):
    """Deconfliction: another agency holds a record that matches one of yours. Each hit names your record, the
    other agency and whom to call there, and the score; nothing of the other agency's record. Made, refreshed and
    withdrawn by cross-referencing; a withdrawn hit (the match rejected, or a record archived) is not shown."""

    queryset = DeconflictionHit.objects.select_related("agency", "entity", "other_agency")
    serializer_class = DeconflictionHitSerializer
    filterset_class = HitFilterSet
    ordering_fields = ["score", "created_at"]
    ordering = ["-created_at", "id"]

    def scoped_queryset(self) -> Any:
        return super().scoped_queryset().filter(archived=False)
