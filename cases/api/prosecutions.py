"""Prosecutions `/api/v1/prosecutions/`: a defendant's charges, court, stage (forward only), verdict and sentence."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from django_filters import rest_framework as filters
from rest_framework import serializers

from cases import services
from cases.models import Case, Charge, Prosecution, ProsecutionStage, Verdict
from core import policy
from core.api.fields import EntityRefField
from core.api.filters import BaseFilterSet
from core.api.serializers import BASE_READ_ONLY, BaseSerializer
from core.api.validation import CurrencyField, amount_field
from core.api.viewsets import BaseModelViewSet

MAX_CHARGES = 200
SENTENCE_EMPTY: dict[str, Any] = {"custody_months": None, "fine_amount": None, "fine_currency": "",
                                  "confiscation": ""}


class WritableCaseField(serializers.PrimaryKeyRelatedField):
    """A case the caller may add prosecutions to; any other id (foreign, invisible, read-only) is a 400."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Case.objects.all(), pk_field=serializers.UUIDField(), **kwargs)

    def get_queryset(self):
        return policy.cases_writable(self.context["request"].user, "case.party")


class ChargeSerializer(BaseSerializer):
    """One charge: the statute and, optionally, what the defendant is said to have done."""

    statute = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")

    class Meta:
        model = Charge
        fields = ["statute", "description"]


class SentenceSerializer(BaseSerializer):
    """The sentence is one value: a write replaces it whole (a key left out is emptied)."""

    custody_months = serializers.IntegerField(min_value=0, max_value=1200, required=False, allow_null=True)
    fine_amount = amount_field()
    fine_currency = CurrencyField(required=False, allow_blank=True)
    confiscation = serializers.CharField(max_length=10_000, required=False, allow_blank=True)

    class Meta:
        model = Prosecution
        fields = list(SENTENCE_EMPTY)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return {**SENTENCE_EMPTY, **super().to_internal_value(data)}


class ProsecutionSerializer(BaseSerializer):
    """A defendant's prosecution in a case: charges (replaced wholesale on write), court, stage, verdict, sentence."""

    case = WritableCaseField()
    defendant = EntityRefField()
    charges = ChargeSerializer(many=True, required=False)
    sentence = SentenceSerializer(source="*", required=False)

    class Meta:
        model = Prosecution
        fields = [*BASE_READ_ONLY, "case", "defendant", "charges", "court", "prosecutor_office", "stage",
                  "filed_on", "verdict", "verdict_on", "sentence"]
        read_only_fields = BASE_READ_ONLY

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            if "sentence" in data and data["sentence"] is None:
                data = {**data, "sentence": {}}  # null clears the sentence, as {} does
            if self.instance is None and "case" in data:
                # The defendant must be of the case's agency (the case may be another agency's, shared read-write):
                # resolve the case first so the defendant's field looks there.
                with contextlib.suppress(serializers.ValidationError):  # reported on `case` by the validation below
                    self.context["case"] = self.fields["case"].run_validation(data["case"])
        return super().to_internal_value(data)

    def validate_charges(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > MAX_CHARGES:
            raise serializers.ValidationError(f"At most {MAX_CHARGES} charges.")
        return value



class ProsecutionFilterSet(BaseFilterSet):
    q_fields = ("court", "prosecutor_office", "defendant__name", "case__reference")

    case = filters.UUIDFilter(field_name="case")
    stage = filters.MultipleChoiceFilter(choices=ProsecutionStage.choices)
    verdict = filters.MultipleChoiceFilter(choices=Verdict.choices)
    defendant = filters.UUIDFilter(field_name="defendant")
    court = filters.CharFilter(field_name="court", lookup_expr="icontains")

    class Meta:
        model = Prosecution
        fields: list[str] = []


class ProsecutionViewSet(BaseModelViewSet):
    queryset = Prosecution.objects.select_related("case", "defendant").prefetch_related("charges")
    serializer_class = ProsecutionSerializer
    filterset_class = ProsecutionFilterSet
    ordering_fields = ["created_at", "updated_at", "filed_on", "verdict_on", "court"]
    ordering = ["-created_at"]
    create_action = "case.party"
    conflict_actions = ("update", "partial_update")  # a stage moved backwards

    def perform_create(self, serializer: Any) -> Any:
        data = dict(serializer.validated_data)
        return services.prosecution_create(case=data.pop("case"), actor=self.request.user, data=data)

    def perform_update(self, serializer: Any) -> Any:
        return services.prosecution_update(prosecution=serializer.instance, actor=self.request.user,
                                           data=serializer.validated_data)

    def perform_archive(self, instance: Prosecution) -> None:
        services.prosecution_archive(prosecution=instance, actor=self.request.user)
