"""The one base viewset: scoping, ETag / If-Match, audited writes and archive on DELETE.

A resource's viewset only declares its queryset, serializer and filterset (NetBox's shape).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet
from rest_framework import exceptions, mixins, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import request_user
from core import policy

from .exceptions import PreconditionFailed
from .export import ExportMixin
from .filters import QueryParametersMixin
from .http import HttpHabitsMixin

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    _ViewBase = GenericAPIView  # the mixin is only ever combined with DRF's generic views
else:
    _ViewBase = object


def etag_for(obj: Any) -> str:
    return f'"{obj.version}"'


def if_match_ok(request: Request, obj: Any) -> bool:
    header = request.headers.get("If-Match")
    if not header:
        return True
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or str(obj.version) in tags


class ScopedViewSetMixin(ExportMixin, QueryParametersMixin, HttpHabitsMixin, _ViewBase):
    """Rows come from the access policy; lists hide archived rows unless asked by a supervisor; a query parameter
    the view does not take is a 400. Every view of the API stands on it, and so answers fields, brief,
    Idempotency-Key, Location and If-None-Match alike; its lists export (core.api.export)."""

    request: Request
    action: str
    queryset: QuerySet

    def scoped_queryset(self) -> QuerySet:
        return policy.visible(self.request.user, self.queryset.all())

    def get_queryset(self) -> QuerySet:
        qs = self.scoped_queryset()
        if self.action == "list" and hasattr(qs.model, "archived"):
            include = self.request.query_params.get("include_archived", "").lower() in ("true", "1", "yes")
            if include and not policy.allows(self.request.user, "case.include_archived"):
                raise exceptions.PermissionDenied("Only supervisors may list archived records.")
            if not include:
                qs = qs.filter(archived=False)
        return qs


class ScopeInQueryMixin(_ViewBase):
    """The policy's scope ANDed into the list's own query rather than wrapped round it as `id IN (scope)`.

    The wrapped form makes PostgreSQL read every row of the agency to build the `IN` set before the filters
    narrow anything (a sequential scan of 100,000 shipments for a page of 100, and a hash join of the whole
    table with itself for a page of persons); ANDed, the scope is one more condition beside the filters, and the
    indexes the filters use still serve. It comes before BaseModelViewSet among a viewset's bases.
    """

    queryset: QuerySet
    request: Request

    def scoped_queryset(self) -> QuerySet:
        return self.queryset.all() & policy.visible(self.request.user, self.queryset.model)


class BaseModelViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    # What the role must be allowed (policy.ACTION_ROLES) to create; rows it may change come from policy.writable.
    create_action: str | None = None

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context.update(self.extra_serializer_context())
        return context

    def extra_serializer_context(self) -> dict[str, Any]:
        return {}

    # --- permission checks ---------------------------------------------------------------------

    def check_can_create(self) -> None:
        if self.create_action is None or not policy.allows(self.request.user, self.create_action):
            raise exceptions.PermissionDenied()

    def check_can_change(self, obj: Any) -> None:
        if not policy.writable(self.request.user, type(obj)).filter(pk=obj.pk).exists():
            raise exceptions.PermissionDenied()

    def check_can_archive(self, obj: Any) -> None:
        self.check_can_change(obj)

    def check_still_visible(self, instance: Any, changed: Any = None) -> None:
        """A write may not move a record out of the caller's reach (the transaction rolls back). `changed`: the
        fields an update wrote (None for a new record); the policy may know the answer without a query."""
        if policy.known_visible(self.request.user, instance, changed=changed):
            return
        if not policy.visible(self.request.user, type(instance)).filter(pk=instance.pk).exists():
            raise exceptions.PermissionDenied("This change would put the record out of your reach.")

    def creates_visible(self) -> bool:
        """Whether whatever the caller creates here is visible to them, known before the write: then the
        service's transaction is the only one (no savepoint inside another), as there is nothing to check after."""
        return False

    def get_locked_object(self) -> Any:
        """The object, row-locked for the rest of the transaction, so If-Match is checked against what we write;
        with the rows the viewset's queryset joins (its agency, its unit, …), which the write's audit event and the
        response read again otherwise, one query each."""
        # The caller's lookup, scoped and filtered as get_object's (404 when not visible): the row, and not what the
        # viewset prefetches for its answers, is read once, locked, in the same query. A query PostgreSQL cannot
        # lock as it is (DISTINCT, GROUP BY) gives only the id, and the row is then read locked by it.
        lookup = self.lookup_url_kwarg or self.lookup_field
        rows = self.filter_queryset(self.get_queryset()).prefetch_related(None)
        where = {self.lookup_field: self.kwargs[lookup]}
        if rows.query.distinct or rows.query.group_by is not None or rows.query.combinator:
            pk = get_object_or_404(rows.values_list("pk", flat=True), **where)
            locked = self.queryset.prefetch_related(None).select_for_update(of=("self",)).get(pk=pk)
        else:
            locked = get_object_or_404(rows.order_by().select_for_update(of=("self",)), **where)
        self.check_object_permissions(self.request, locked)
        return locked

    # --- handlers ------------------------------------------------------------------------------

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        self.on_retrieve(instance)
        response = Response(self.get_serializer(instance).data)
        response["ETag"] = etag_for(instance)
        return response

    def on_retrieve(self, instance: Any) -> None:
        """Hook for recording views of sensitive details."""

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.check_can_create()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if self.creates_visible():
            instance = self.perform_create(serializer)
        else:
            with transaction.atomic():
                instance = self.perform_create(serializer)
                self.check_still_visible(instance)
        serializer.instance = instance  # the answer is the input's serializer's, as DRF's own create answers
        response = Response(serializer.data, status=201)
        response["ETag"] = etag_for(instance)
        return response

    # A resource writes through its app's services (one write path): each of these is one service call, which
    # checks the rules, versions, audits and leaves the work after commit in the outbox.

    def perform_create(self, serializer: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} names no *_create service")

    def perform_update(self, serializer: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} names no *_update service")

    def perform_archive(self, instance: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} names no *_archive service")

    def owner_agency(self) -> Any:
        """The agency that owns what the caller creates: theirs (400 when they belong to none)."""
        agency = request_user(self.request).agency
        if agency is None:
            raise exceptions.ValidationError(
                {"agency": ["You belong to no agency, so you cannot own records: sign in as an agency's user."]}
            )
        return agency

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        with transaction.atomic():
            instance = self.get_locked_object()
            self.check_can_change(instance)
            if not if_match_ok(request, instance):
                raise PreconditionFailed()
            serializer = self.get_serializer(instance, data=request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
            instance = self.perform_update(serializer)
            self.check_still_visible(instance, changed=serializer.validated_data)
        return self._detail_response(instance, serializer)

    def _detail_response(self, instance: Any, serializer: Any = None) -> Response:
        if serializer is None:
            serializer = self.get_serializer(instance)
        else:
            serializer.instance = instance  # the input's serializer answers (its fields are built once)
        response = Response(serializer.data)
        response["ETag"] = etag_for(instance)
        return response

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic():
            instance = self.get_locked_object()
            self.check_can_archive(instance)
            if not if_match_ok(request, instance):
                raise PreconditionFailed()
            if not instance.archived:
                self.perform_archive(instance)
        return Response(status=204)


class ReadOnlyViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()  # once: the ETag is the answered row's
        response = Response(self.get_serializer(instance).data)
        if hasattr(instance, "version"):
            response["ETag"] = etag_for(instance)
        return response
