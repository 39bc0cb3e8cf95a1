from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from accounts.models import Agency, Unit, User
from cases.choices import CaseStatus
from cases.models import Case, CaseParty, CaseShare, Commodity, Note
from core import policy
from core.api.fields import AgencySlugField, EntityRefField
from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer, BaseSerializer


class CaseSerializer(AgencyOwnedSerializer):
    unit = AgencySlugField(slug_field="code", queryset=Unit.objects.all(), required=False, allow_null=True)
    lead = AgencySlugField(slug_field="username", queryset=User.objects.filter(is_active=True),
                           required=False, allow_null=True)
    members = AgencySlugField(slug_field="username", queryset=User.objects.filter(is_active=True),
                              many=True, required=False)
    commodities = serializers.SlugRelatedField(slug_field="code", queryset=Commodity.objects.all(),
                                               many=True, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), max_length=50, required=False)
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Case
        fields = [
            *BASE_READ_ONLY, "agency", "reference", "title", "summary", "status", "priority", "classification",
            "unit", "lead", "members", "commodities", "opened_on", "closed_on", "tags", "created_by",
        ]
        read_only_fields = [*BASE_READ_ONLY, "reference", "closed_on", "created_by"]

    def validate_classification(self, value: str) -> str:
        if not policy.may_classify(self.context["request"].user, value):
            raise serializers.ValidationError("Above your clearance: you could not read this case.")
        return value

    def validate_status(self, value: str) -> str:
        if self.instance is None and value != CaseStatus.OPEN:
            raise serializers.ValidationError("A new case starts as open.")
        return value

    def create(self, validated_data: dict[str, Any]) -> Case:
        from cases.services import case_next_reference

        user = self.context["request"].user
        validated_data.setdefault("opened_on", timezone.localdate())
        # The creator leads the case in their own unit unless told otherwise.
        if "unit" not in validated_data and user.unit_id is not None:
            validated_data["unit"] = user.unit
        if "lead" not in validated_data and user.agency_id == validated_data["agency"].pk:
            validated_data["lead"] = user
        validated_data["created_by"] = user
        validated_data["reference"] = case_next_reference(agency=validated_data["agency"])
        return super().create(validated_data)

    def update(self, instance: Case, validated_data: dict[str, Any]) -> Case:
        status = validated_data.get("status", instance.status)
        if status != instance.status:
            validated_data["closed_on"] = timezone.localdate() if status == CaseStatus.CLOSED else None
        return super().update(instance, validated_data)


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
        data["unit"] = instance.unit.code if instance.unit else None
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        case = self.context["case"]
        agency = attrs.get("agency", getattr(self.instance, "agency", None))
        if agency is not None and agency.pk == case.agency_id:
            raise serializers.ValidationError({"agency": ["A case is shared with another agency, not its own."]})
        if "unit" in attrs:
            code = attrs.pop("unit")
            if code:
                unit = Unit.objects.filter(agency=agency, code=code).first()
                if unit is None:
                    assert agency is not None  # the field is required on create, and a share keeps its agency
                    raise serializers.ValidationError({"unit": [f"Agency {agency.code} has no unit {code!r}."]})
                attrs["unit"] = unit
            else:
                attrs["unit"] = None
        return attrs
