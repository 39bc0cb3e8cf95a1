"""Shipments (with ordered legs), licences and the read-only commodities (API.md § Shipments, § Licences)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects
from rest_framework import serializers

from cases.models import Case, Commodity
from core import policy
from core.api.fields import EntityRefField, owner_agency_id
from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer, BaseSerializer
from core.api.validation import CountryField, CurrencyField, HSCodeField, amount_field, percent_field
from core.rules import RuleViolation
from shipments import rules
from shipments.models import Licence, Shipment, ShipmentLeg, TransportMode
from shipments.services import LEG_FIELDS


def visible_cases(user: Any) -> QuerySet:
    """The cases whose ids a shipment shows the caller: only those the caller may see."""
    return policy.cases_visible(user).only("id").order_by("id")


def visible_cases_prefetch(user: Any) -> Prefetch:
    return Prefetch("cases", queryset=visible_cases(user))


class ParseOnly:
    # A serializer that parses only: the record is written by its service (the viewset calls it), so that no
    # `save()` writes it past its rules, derived fields, audit event and outbox row. (No docstring: the schema
    # would take it for the resource's description.)

    def create(self, validated_data: Any) -> NoReturn:
        raise NotImplementedError("Written by shipments.services, not by a serializer.")

    def update(self, instance: Any, validated_data: Any) -> NoReturn:
        raise NotImplementedError("Written by shipments.services, not by a serializer.")


class CommodityField(serializers.SlugRelatedField):
    """A commodity by its code; the code is the primary key, so reading it needs no join."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Commodity.objects.all())
        super().__init__(slug_field="code", **kwargs)

    def use_pk_only_optimization(self) -> bool:
        return True

    def to_representation(self, value: Any) -> str:
        return str(value.pk)


class CaseIdField(serializers.PrimaryKeyRelatedField):
    """A case id: one of the owning agency's cases that the caller sees, else a 400 on the field."""

    default_error_messages = {"does_not_exist": "No case with id {pk_value} is available here."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Case.objects.all(), pk_field=serializers.UUIDField(), **kwargs)

    def get_queryset(self) -> QuerySet:
        return policy.cases_visible(self.context["request"].user).filter(agency_id=owner_agency_id(self))


class LicenceIdField(serializers.PrimaryKeyRelatedField):
    """A licence id: one of the owning agency's licences (not archived, unless already the shipment's)."""

    default_error_messages = {"does_not_exist": "No licence with id {pk_value} is available here."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Licence.objects.all(), pk_field=serializers.UUIDField(), **kwargs)

    def get_queryset(self) -> QuerySet:
        licences = policy.visible(self.context["request"].user, Licence).filter(agency_id=owner_agency_id(self))
        current = getattr(self.root.instance, "licence_id", None)
        return licences.filter(Q(archived=False) | Q(pk=current)) if current else licences.filter(archived=False)


class LegSerializer(BaseSerializer):
    from_country = CountryField(required=False, allow_blank=True)
    to_country = CountryField(required=False, allow_blank=True)
    mode = serializers.ChoiceField(choices=TransportMode.choices, required=False, allow_blank=True)

    class Meta:
        model = ShipmentLeg
        fields = LEG_FIELDS

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The rule is the service's (shipments.rules); asked here too so a bad leg is named by its index.
        try:
            rules.leg_check(departed_on=attrs.get("departed_on"), arrived_on=attrs.get("arrived_on"))
        except RuleViolation as exc:
            raise serializers.ValidationError(exc.errors) from exc
        return attrs


def _quantity(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=3, min_value=0, required=False, allow_null=True,
                                    **kwargs)


class ShipmentSerializer(ParseOnly, AgencyOwnedSerializer):
    commodity = CommodityField(required=False, allow_null=True)
    hs_code = HSCodeField(required=False, allow_blank=True)
    declared_hs_code = HSCodeField(required=False, allow_blank=True)
    quantity_kg = _quantity()
    purity_pct = percent_field()
    declared_value = amount_field()
    currency = CurrencyField(required=False, allow_blank=True)
    origin_country = CountryField(required=False, allow_blank=True)
    destination_country = CountryField(required=False, allow_blank=True)
    legs = LegSerializer(many=True, required=False,
                         help_text="The route in order; a list written replaces the stored one whole.")
    # Derived from the legs (shipments.services): read-only, so a list a client sends is ignored.
    transit_countries = serializers.ListField(
        child=CountryField(), read_only=True,
        help_text="Derived from the legs: every country between origin and destination.",
    )
    consignor = EntityRefField(required=False, allow_null=True)
    consignee = EntityRefField(required=False, allow_null=True)
    notify_party = EntityRefField(required=False, allow_null=True)
    ordering_party = EntityRefField(required=False, allow_null=True)
    licence = LicenceIdField(required=False, allow_null=True)
    seized_quantity_kg = _quantity()
    cases = CaseIdField(many=True, required=False,
                        help_text="Ids of the cases you see; links to cases you do not see are neither shown "
                                  "nor changed.")

    class Meta:
        model = Shipment
        fields = [
            *BASE_READ_ONLY, "agency", "reference", "commodity", "hs_code", "declared_hs_code",
            "declared_description", "quantity_kg", "purity_pct", "declared_value", "currency", "origin_country",
            "destination_country", "legs", "transit_countries", "consignor", "consignee", "notify_party",
            "ordering_party", "licence", "status", "seized_on", "seized_quantity_kg", "seizure_location", "cases",
            "source", "source_id",
        ]
        read_only_fields = BASE_READ_ONLY

    # --- reading -------------------------------------------------------------------------------

    def to_representation(self, instance: Shipment) -> dict[str, Any]:
        if "cases" in self.fields and "cases" not in getattr(instance, "_prefetched_objects_cache", {}):
            prefetch_related_objects([instance], visible_cases_prefetch(self.context["request"].user))
        return super().to_representation(instance)



class LicenceSerializer(ParseOnly, AgencyOwnedSerializer):
    holder = EntityRefField()
    end_user = EntityRefField(required=False, allow_null=True)
    commodity = CommodityField()
    max_quantity_kg = _quantity()
    destination_country = CountryField(required=False, allow_blank=True)

    class Meta:
        model = Licence
        fields = [*BASE_READ_ONLY, "agency", "number", "holder", "commodity", "max_quantity_kg",
                  "destination_country", "end_user", "valid_from", "valid_to", "status"]
        read_only_fields = BASE_READ_ONLY


class CommoditySerializer(serializers.ModelSerializer):
    class Meta:
        model = Commodity
        fields = ["code", "name", "hs_codes", "control_regime", "controlled_since", "licence_required",
                  "reference_value_per_kg", "currency"]
        read_only_fields = fields
