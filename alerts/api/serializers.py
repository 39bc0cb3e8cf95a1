"""Alerts (API.md § Alerts): presentation, and the parsing of a user's change (status, case); the change itself is
`alerts.services.alert_update`, which checks `alerts.rules`."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from alerts.models import Alert, AlertStatus
from alerts.rules import NO_SUCH_CASE, attachable_cases
from cases.models import Case
from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer

SUBJECT_TYPES = ("shipment", "person", "organization")


@extend_schema_field({
    "type": "object",
    "properties": {"type": {"type": "string", "enum": list(SUBJECT_TYPES)},
                   "id": {"type": "string", "format": "uuid"},
                   "label": {"type": "string", "description": "The shipment's reference or the entity's name"}},
    "required": ["type", "id", "label"],
})
class SubjectField(serializers.Field):
    """What the alert is about: `{"type": "shipment"|"person"|"organization", "id", "label"}`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, alert: Alert) -> dict[str, Any]:
        if alert.shipment_id:
            return {"type": "shipment", "id": str(alert.shipment_id), "label": alert.label}
        # Lists annotate the entity's type (AlertViewSet); a lone alert asks its entity.
        entity_type = getattr(alert, "entity_type", None) or (alert.entity.type if alert.entity else "")
        return {"type": entity_type, "id": str(alert.entity_id), "label": alert.label}


@extend_schema_field({
    "type": "array",
    "items": {"type": "object", "additionalProperties": True,
              "properties": {"type": {"type": "string",
                                      "enum": ["person", "organization", "shipment", "case", "licence"]},
                             "id": {"type": "string", "format": "uuid"},
                             "label": {"type": "string"}},
              "required": ["type", "id", "label"]},
    "example": [{"type": "organization", "id": "3f1c7a52-8d0e-4b6a-9a57-2c1e0f4b9d11", "label": "Grand Harvest Ltd",
                 "list": "ofac-sdn", "programmes": ["SDGT"], "score": 0.93, "reasons": "name 0.93, same country"}],
})
class RelatedField(serializers.JSONField):
    """What the rule found beside the subject: `[{"type", "id", "label", …}]` (a watchlist entry adds `list`,
    `programmes`, `score`, `reasons`)."""


class AlertCaseField(serializers.PrimaryKeyRelatedField):
    """A case the alert may be attached to (`alerts.rules.attachable_cases`), or the one it is attached to; any other
    id, of a case that exists or not, is the same 400 on `case`. Scoped, so no form offers another case."""

    default_error_messages = {"does_not_exist": NO_SUCH_CASE}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(pk_field=serializers.UUIDField(), **kwargs)

    def get_queryset(self) -> Any:
        request, alert = self.context.get("request"), getattr(self.parent, "instance", None)
        if request is None or not isinstance(alert, Alert):
            return Case.objects.none()
        return Case.objects.filter(Q(pk__in=attachable_cases(request.user, alert).values("pk")) | Q(pk=alert.case_id))


class AlertSerializer(AgencyOwnedSerializer):
    """A red flag a rule raised on a shipment, a person or an organisation, with its reasons; users set its
    `status` and the `case` it is attached to, nothing else (other fields sent are ignored)."""

    subject = SubjectField()
    related = RelatedField(read_only=True)
    status = serializers.ChoiceField(choices=AlertStatus.choices, required=False,
                                     help_text="open, dismissed (by a user, or by the system: `closed_reason` "
                                               "says why) or escalated")
    case = AlertCaseField(required=False, allow_null=True,
                          help_text="The case this alert is attached to: a case of the alert's agency you may "
                                    "write; null detaches")
    status_changed_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True)

    class Meta:
        model = Alert
        fields = [*BASE_READ_ONLY, "agency", "rule", "severity", "subject", "related", "explanation", "status", "case",
                  "closed_reason", "status_changed_by", "status_changed_at"]
        read_only_fields = [field for field in fields if field not in ("status", "case")]
