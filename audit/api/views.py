from django.conf import settings
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import request_user
from audit.models import Action, AuditEvent
from audit.services import verify_chain
from core import policy
from core.api.viewsets import ReadOnlyViewSet


class AuditEventSerializer(serializers.ModelSerializer):
    agency = serializers.CharField(source="agency_code")

    class Meta:
        model = AuditEvent
        fields = ["seq", "at", "actor", "agency", "action", "object_type", "object_id", "case_id",
                  "changes", "request_id", "ip", "prev_hash", "hash"]


class AuditFilterSet(filters.FilterSet):
    actor = filters.CharFilter()
    action = filters.MultipleChoiceFilter(choices=Action.choices)
    object_type = filters.CharFilter()
    object_id = filters.CharFilter()
    case = filters.UUIDFilter(field_name="case_id")
    after = filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    before = filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


class AuditEventViewSet(ReadOnlyViewSet):
    """The caller's agency's audit trail (auditors, supervisors and agency admins)."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditFilterSet
    ordering_fields = ["seq", "at"]
    ordering = ["-seq"]
    lookup_field = "seq"
    read_refusal = "Only auditors, supervisors and agency admins read the audit trail."

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not policy.allows(request.user, "audit.view"):
            raise exceptions.PermissionDenied(self.read_refusal)

    def scoped_queryset(self):
        qs = super().scoped_queryset()
        # A superuser without an agency reads the global chain; everyone else their agency's.
        return qs.filter(chain=self._chain())

    def _chain(self) -> str:
        from audit.services import chain_of

        return chain_of(request_user(self.request).agency)

    @extend_schema(
        responses=inline_serializer(
            "AuditVerification",
            {"ok": serializers.BooleanField(), "checked": serializers.IntegerField(),
             "first_bad_seq": serializers.IntegerField(allow_null=True),
             "reason": serializers.CharField(help_text="Why first_bad_seq is bad; empty when ok"),
             "from_seq": serializers.IntegerField(help_text="The first event rehashed"),
             "head_seq": serializers.IntegerField(),
             "signed": serializers.BooleanField(
                 help_text="Whether signed checkpoints were checked (false: no checkpoint key is configured)"),
             "complete": serializers.BooleanField(
                 help_text="Whether the rehash reached the head (it stops after AUDIT_VERIFY_MAX_EVENTS)"),
             "checkpoint": inline_serializer("AuditCheckpointRef", {
                 "seq": serializers.IntegerField(), "hash": serializers.CharField(),
                 "at": serializers.DateTimeField(), "key_id": serializers.CharField()}, allow_null=True)},
        )
    )
    @action(detail=False, methods=["get"])
    def verify(self, request):
        """Verify the caller's agency's chain from its latest signed checkpoint to its head, in bounded time."""
        return Response(verify_chain(self._chain(), max_events=settings.AUDIT_VERIFY_MAX_EVENTS).summary())
