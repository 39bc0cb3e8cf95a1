from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from imports.models import ImportJob, ImportKind, ImportMode, ImportRowError


class ImportJobSerializer(serializers.ModelSerializer):
    agency: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="code", read_only=True)
    created_by: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    file = serializers.FileField(write_only=True)
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    mode = serializers.ChoiceField(choices=ImportMode.choices, default=ImportMode.PARTIAL)
    source = serializers.CharField(  # type: ignore[assignment]  # a field named `source`, not Field.source
        max_length=100, required=False, allow_blank=True, default="")

    class Meta:
        model = ImportJob
        fields = ["id", "agency", "status", "kind", "mode", "source", "file", "sha256", "total_rows",
                  "processed_rows", "created", "updated", "unchanged", "failed_rows", "error", "started_at",
                  "finished_at", "created_at", "created_by"]
        read_only_fields = [f for f in fields if f not in ("kind", "mode", "source", "file")]

    def validate_file(self, value: Any) -> Any:
        if value.size > settings.IMPORT_MAX_BYTES:
            raise serializers.ValidationError("too large")  # the view answers 413 before this
        return value


class ImportRowErrorSerializer(serializers.ModelSerializer):
    values = serializers.DictField(read_only=True, help_text="The row's values as the file gave them, by column.")

    class Meta:
        model = ImportRowError
        fields = ["row", "field", "message", "values"]
