from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Agency, Unit, User
from cases import rules
from cases.models import Case, CaseParty, CaseShare, Commodity, Note
from core.api.fields import AgencySlugField, EntityRefField, SlugsFromColumn
from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer, BaseSerializer


class CaseSerializer(AgencyOwnedSerializer):
    unit = AgencySlugField(slug_field="code", queryset=Unit.objects.all(), required=False, allow_null=True)
    lead = AgencySlugField(slug_field="username", queryset=User.objects.filter(is_active=True),
                           required=False, allow_null=True)
    members = AgencySlugField(slug_field="username", queryset=User.objects.filter(is_active=True),
                              many=True, required=False)
    commodities = SlugsFromColumn(slug_field="code", queryset=Commodity.objects.all(), many=True, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), max_length=50, required=False)
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Case
        fields = [
            *BASE_READ_ONLY, "agency", "reference", "title", "summary", "status", "priority", "classification",
            "unit", "lead", "members", "commodities", "opened_on", "closed_on", "tags", "created_by",
        ]
        read_only_fields = [*BASE_READ_ONLY, "reference", "closed_on", "created_by"]


class PartySerializer(BaseSerializer):
    entity = EntityRefField()
    case: serializers.PrimaryKeyRelatedField[Case] = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = CaseParty
        fields = [*BASE_READ_ONLY, "case", "entity", "role", "custody_status", "notes"]
        read_only_fields = BASE_READ_ONLY


class NoteSerializer(BaseSerializer):
    author: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    case: serializers.PrimaryKeyRelatedField[Case] = serializers.PrimaryKeyRelatedField(read_only=True)
    body = serializers.CharField(max_length=100_000)

    class Meta:
        model = Note
        fields = [*BASE_READ_ONLY, "case", "body", "author"]
        read_only_fields = [*BASE_READ_ONLY, "author"]


class ShareSerializer(BaseSerializer):
    agency = serializers.SlugRelatedField(slug_field="code", queryset=Agency.objects.all())
    unit = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    case: serializers.PrimaryKeyRelatedField[Case] = serializers.PrimaryKeyRelatedField(read_only=True)
    shared_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CaseShare
        fields = [*BASE_READ_ONLY, "case", "agency", "unit", "access", "shared_by"]
        read_only_fields = [*BASE_READ_ONLY, "shared_by"]

    def to_representation(self, instance: CaseShare) -> dict[str, Any]:
        data = super().to_representation(instance)
        if "unit" in data:  # not when `?fields=` leaves it out
            data["unit"] = instance.unit.code if instance.unit else None
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Parsing only: a unit is named by its code within the share's agency (cases.rules has the share's rules).
        agency = attrs.get("agency", getattr(self.instance, "agency", None))
        if "unit" in attrs:
            code = attrs.pop("unit")
            if code:
                assert agency is not None  # the field is required on create, and a share keeps its agency
                unit = Unit.objects.filter(agency=agency, code=code).first()
                if unit is None:
                    raise serializers.ValidationError({"unit": [rules.no_such_unit(agency.code, code)]})
                attrs["unit"] = unit
            else:
                attrs["unit"] = None
        return attrs


class TimelineEntrySerializer(serializers.Serializer):
    """What every entry of a case's timeline has (the schema of `GET /cases/{id}/timeline/`; the view writes the
    entries itself)."""

    at = serializers.DateTimeField()
    actor = serializers.CharField(help_text="Username (empty for the system)")
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()


class TimelineEventSerializer(TimelineEntrySerializer):
    """An audit event of the case or of one of its records."""

    type = serializers.ChoiceField(choices=["event"])
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        help_text="{field: [old, new]}",
    )


class TimelineNoteSerializer(TimelineEntrySerializer):
    """A note of the case (`action` and `object_type` are `note`)."""

    type = serializers.ChoiceField(choices=["note"])
    body = serializers.CharField(help_text="The note's text")
