"""Shipments (with ordered legs), licences and the read-only commodities (API.md § Shipments, § Licences)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects
from rest_framework import serializers

from cases.models import Case, Commodity
from core import policy
from core.api.fields import EntityRefField, owner_agency_id
from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer, BaseSerializer
from core.api.validation import CountryField, CurrencyField, HSCodeField, amount_field, percent_field
from shipments.models import Licence, Shipment, ShipmentLeg, TransportMode

MAX_LEGS = 50
LEG_FIELDS = ("from_country", "from_port", "to_country", "to_port", "mode", "carrier", "vessel", "container",
              "departed_on", "arrived_on")


def visible_cases(user: Any) -> QuerySet:
    """The cases whose ids a shipment shows the caller: only those the caller may see."""
    return policy.cases_visible(user).only("id").order_by("id")


def visible_cases_prefetch(user: Any) -> Prefetch:
    return Prefetch("cases", queryset=visible_cases(user))


@contextmanager
def _unique_or_400(constraint: str, field: str, message: str) -> Iterator[None]:
    """Turns the race a validator cannot see (two writers, one unique value) into a 400 on the field."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if constraint in str(exc):
            raise serializers.ValidationError({field: [message]}) from exc
        raise


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
        departed, arrived = attrs.get("departed_on"), attrs.get("arrived_on")
        if departed and arrived and arrived < departed:
            raise serializers.ValidationError({"arrived_on": ["A leg cannot arrive before it departs."]})
        return attrs


def _quantity(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=3, min_value=0, required=False, allow_null=True,
                                    **kwargs)


class ShipmentSerializer(AgencyOwnedSerializer):
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
    # Derived from the legs. A client without legs (a customs extract, say) may give them instead, as a
    # shipments import file may (API.md § Bulk import): stored as given while the shipment has no legs.
    transit_countries = serializers.ListField(
        child=CountryField(), required=False, max_length=MAX_LEGS,
        help_text="Derived from the legs: every country between origin and destination. Accepted on write only "
                  "from a request without `legs` for a shipment that has none; ignored otherwise.",
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
        if "cases" not in getattr(instance, "_prefetched_objects_cache", {}):
            prefetch_related_objects([instance], visible_cases_prefetch(self.context["request"].user))
        return super().to_representation(instance)

    # --- checking ------------------------------------------------------------------------------

    def _current(self, attrs: dict[str, Any], name: str) -> Any:
        return attrs[name] if name in attrs else getattr(self.instance, name, None)

    def validate_legs(self, legs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(legs) > MAX_LEGS:
            raise serializers.ValidationError(f"At most {MAX_LEGS} legs.")
        return legs

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        seized, quantity = self._current(attrs, "seized_quantity_kg"), self._current(attrs, "quantity_kg")
        if seized is not None and quantity is not None and seized > quantity:
            errors["seized_quantity_kg"] = ["More was seized than the shipment carried (quantity_kg)."]
        source, source_id = self._current(attrs, "source") or "", self._current(attrs, "source_id") or ""
        if source_id and ("source" in attrs or "source_id" in attrs):
            others = Shipment.objects.filter(agency_id=owner_agency_id(self.fields["source_id"]), source=source,
                                             source_id=source_id)
            if self.instance is not None:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                errors["source_id"] = [f"Another shipment already has source_id {source_id!r} from this source."]
        if errors:
            raise serializers.ValidationError(errors)
        if "legs" in attrs:
            attrs.pop("transit_countries", None)  # derived from the legs given; a client's own list is ignored
        return attrs

    # --- writing -------------------------------------------------------------------------------

    def _derive(self, shipment: Shipment, legs: list[dict[str, Any]] | None, transit: list[str] | None) -> None:
        if legs is not None:
            shipment.derive_from_legs(legs)
            return
        stored = list(shipment.legs.all()) if shipment.pk and not shipment._state.adding else []
        if stored:
            shipment.derive_from_legs(stored)  # origin or destination may have moved
        elif transit is not None:
            shipment.transit_countries = list(dict.fromkeys(transit))

    def _save(self, shipment: Shipment) -> None:
        with _unique_or_400("shipment_source_id_per_agency", "source_id",
                            "Another shipment already has this source_id from this source."):
            shipment.save()

    @staticmethod
    def _write_legs(shipment: Shipment, legs: list[dict[str, Any]]) -> None:
        ShipmentLeg.objects.filter(shipment=shipment).delete()
        ShipmentLeg.objects.bulk_create(
            ShipmentLeg(shipment=shipment, seq=seq, **leg) for seq, leg in enumerate(legs, start=1)
        )
        getattr(shipment, "_prefetched_objects_cache", {}).pop("legs", None)

    def create(self, validated_data: dict[str, Any]) -> Shipment:
        legs = validated_data.pop("legs", None)
        cases = validated_data.pop("cases", None)
        transit = validated_data.pop("transit_countries", None)
        shipment = Shipment(**validated_data)
        self._derive(shipment, legs, transit)
        self._save(shipment)
        if legs:
            self._write_legs(shipment, legs)
        if cases:
            shipment.cases.set(cases)
        return shipment

    def update(self, instance: Shipment, validated_data: dict[str, Any]) -> Shipment:
        legs = validated_data.pop("legs", None)
        cases = validated_data.pop("cases", None)
        transit = validated_data.pop("transit_countries", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        self._derive(instance, legs, transit)
        self._save(instance)
        if legs is not None:
            self._write_legs(instance, legs)
        if cases is not None:
            # Links to cases the caller cannot see are kept: they were never shown, so they cannot be meant.
            hidden = instance.cases.exclude(pk__in=visible_cases(self.context["request"].user).values("pk"))
            instance.cases.set([*cases, *hidden])
        return instance


class LicenceSerializer(AgencyOwnedSerializer):
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

    def validate_number(self, value: str) -> str:
        others = Licence.objects.filter(agency_id=owner_agency_id(self.fields["number"]), number=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(f"Your agency already has a licence numbered {value!r}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        valid_from = attrs.get("valid_from", getattr(self.instance, "valid_from", None))
        valid_to = attrs.get("valid_to", getattr(self.instance, "valid_to", None))
        if valid_from and valid_to and valid_to < valid_from:
            raise serializers.ValidationError({"valid_to": ["A licence cannot expire before it starts (valid_from)."]})
        return attrs

    def _guarded(self, write: Any, *args: Any) -> Licence:
        with _unique_or_400("licence_number_per_agency", "number", "Your agency already has a licence so numbered."):
            return write(*args)

    def create(self, validated_data: dict[str, Any]) -> Licence:
        return self._guarded(super().create, validated_data)

    def update(self, instance: Licence, validated_data: dict[str, Any]) -> Licence:
        return self._guarded(super().update, instance, validated_data)


class CommoditySerializer(serializers.ModelSerializer):
    class Meta:
        model = Commodity
        fields = ["code", "name", "hs_codes", "control_regime", "controlled_since", "licence_required",
                  "reference_value_per_kg", "currency"]
        read_only_fields = fields
