from __future__ import annotations

from typing import Any

from rest_framework import serializers

BASE_READ_ONLY = ("id", "created_at", "updated_at", "version", "archived")


class BaseSerializer(serializers.ModelSerializer):
    """Common fields read-only and ignored on input; a field the resource does not have is a 400."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        elif data is not None and not hasattr(data, "getlist"):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}
            )
        return super().to_internal_value(data)


class AgencyOwnedSerializer(BaseSerializer):
    """`agency` is shown as its code and always taken from the caller."""

    agency = serializers.SlugRelatedField(slug_field="code", read_only=True)
