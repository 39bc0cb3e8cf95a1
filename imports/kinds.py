"""What each kind of import file holds: the serializer that checks a row (the API's own parsing, then the
record's rules from `entities.rules`, all but the one refusing a known source_id: an import upserts instead),
the columns taken off a row first (shipment parties, a link's own id), the model written and its upsert key;
and the shape a file row takes before it is checked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models
from rest_framework import serializers

from core.api.validation import CountryField
from core.rules import RuleViolation, Violations
from entities import rules, validators
from entities.api.serializers import LinkSerializer, OrganizationSerializer, PersonSerializer
from entities.models import Entity, EntityType, Link
from shipments import rules as shipment_rules
from shipments.api.serializers import ShipmentSerializer
from shipments.models import PARTY_ROLES, Shipment

LIST_FIELDS = ("names", "nationalities", "transit_countries", "phones", "emails", "addresses", "identifiers", "topics")


def _ruled(check: Callable[[], None]) -> None:
    """A rule a row breaks, reported on the row as its parsing errors are."""
    try:
        check()
    except RuleViolation as exc:
        raise serializers.ValidationError(exc.errors) from exc


class ImportPersonSerializer(PersonSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        _ruled(lambda: rules.check_entity(EntityType.PERSON, attrs))
        return attrs


class ImportOrganizationSerializer(OrganizationSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        _ruled(lambda: rules.check_entity(EntityType.ORGANIZATION, attrs))
        return attrs


def _split(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None:
        return []
    return [item.strip() for item in str(value).split(";") if item.strip()]


def _identifier(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    parts = [p.strip() for p in item.split(":")]
    if len(parts) < 2:
        return {"scheme": "", "number": item}
    scheme, number, country = parts[0], ":".join(parts[1:-1]) if len(parts) > 2 else parts[1], \
        parts[-1] if len(parts) > 2 else ""
    return {"scheme": scheme.lower(), "number": number, "country": country}


def row_to_data(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The API's input shape of a file row: lists split on `;`, identifiers parsed, blanks left out."""
    errors: dict[str, list[str]] = {}
    if "__bad_json__" in row:
        return {}, {"": [f"Not valid JSON: {row['__bad_json__']}."]}
    if "__not_object__" in row:
        return {}, {"": ["Not a JSON object."]}
    if "__extra__" in row:
        errors[""] = [f"The row has {len(row['__extra__'])} more value(s) than the header has columns."]
    data: dict[str, Any] = {}
    address_country = row.get("address_country") or ""
    for key, value in row.items():
        if key in ("__extra__", "address_country") or key is None:
            continue
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None, []):
            continue
        if key in LIST_FIELDS:
            items = _split(value)
            if key == "identifiers":
                items = [_identifier(i) for i in items]
            elif key == "addresses":
                items = [{"text": i, "country": address_country} if isinstance(i, str) else i for i in items]
            value = items
        data[key] = value
    return data, errors


# What an error row keeps of the row it reports: enough to find and fix it, bounded so that a file of very wide or
# very long rows cannot make its errors list bigger than the file.
ROW_VALUES_MAX_COLUMNS = 60
ROW_VALUES_MAX_TEXT = 500


def row_values(row: dict[str, Any]) -> dict[str, Any]:
    """The row's values as the file gave them (column → cell), for its error rows: at most
    ROW_VALUES_MAX_COLUMNS columns, texts cut at ROW_VALUES_MAX_TEXT characters, nested values as JSON text."""
    if "__bad_json__" in row or "__not_object__" in row:
        text = str(row.get("__bad_json__", row.get("__not_object__")))
        return {"": text[:ROW_VALUES_MAX_TEXT]}
    kept: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or len(kept) >= ROW_VALUES_MAX_COLUMNS:
            continue
        if key == "__extra__":
            key = ""  # the cells beyond the header's columns
        if isinstance(value, dict | list | tuple):
            value = json.dumps(value, ensure_ascii=False, default=str)
        elif value is not None and not isinstance(value, bool | int | float | str):
            value = str(value)  # a date or a decimal of a spreadsheet's cell
        if isinstance(value, str):
            value = value[:ROW_VALUES_MAX_TEXT]
        kept[str(key)[:100]] = value
    return kept


def flatten(detail: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(field, message) pairs of a DRF error detail, nested list items named `field[i].part`."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors",) else str(key)
            yield from flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(detail, list):
        if all(not isinstance(d, dict | list) for d in detail):
            for message in detail:
                yield prefix, str(message)
        else:
            for i, item in enumerate(detail):
                if item:
                    yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, str(detail)


@dataclass
class Kind:
    entity_type: str  # '' for shipments
    serializer: type[serializers.Serializer]
    columns: frozenset[str]
    required: frozenset[str]
    model: type[models.Model] = Entity
    # Columns that are not the serializer's, taken off a row first: (extra model values, errors).
    take_columns: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, list[str]]]] | None = None
    key: tuple[str, str] = ("source", "source_id")  # the model's upsert key: (source label, id in the source)
    # The serializer of a row by what `take_columns` took off it, where a file mixes record types (None: `serializer`).
    serializer_for: Callable[[dict[str, Any]], type[serializers.Serializer]] | None = None


def _entity_kind(entity_type: str, serializer: type[serializers.Serializer]) -> Kind:
    fields = serializer().fields
    writable = {name for name, f in fields.items() if not f.read_only}
    return Kind(entity_type, serializer, frozenset(writable | {"address_country", "source", "source_id"}),
                frozenset({"name"}))


class _ImportShipmentSerializer(ShipmentSerializer):
    """A shipment row: parties come as name/country/registration columns, and the route as transit_countries
    (read-only in the API), taken only for a shipment without legs (API.md § Bulk import)."""

    transit_countries = serializers.ListField(child=CountryField(), required=False,  # type: ignore[assignment]
                                              max_length=shipment_rules.MAX_LEGS)

    class Meta(ShipmentSerializer.Meta):
        fields = [f for f in ShipmentSerializer.Meta.fields
                  if f not in ("legs", "cases", "licence", *PARTY_ROLES)]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Without the source_id uniqueness of the API: an import upserts by it instead.
        found = None
        try:
            shipment_rules.shipment_check(attrs)
        except RuleViolation as exc:
            found = Violations()
            found.merge(exc)
        job = self.context.get("job")
        if attrs.get("transit_countries") and attrs.get("source_id") and job is not None:
            key = (attrs.get("source") or job.source, attrs["source_id"])
            routed = self._keys_with_legs()
            if key in routed and list(dict.fromkeys(attrs["transit_countries"])) == routed[key]:
                # The route its legs give, as an export of the shipment writes it: nothing to change.
                del attrs["transit_countries"]
            else:
                try:
                    shipment_rules.transit_countries_check(has_legs=key in routed)
                except RuleViolation as exc:
                    found = found or Violations()
                    found.merge(exc)
        if found:
            raise serializers.ValidationError(found.errors)
        return attrs

    def _keys_with_legs(self) -> dict[tuple[str, str], list[str]]:
        """(source, source_id) → transit countries of the agency's shipments that have legs: read once for the
        whole job."""
        keys = getattr(self, "_with_legs", None)
        if keys is None:
            job = self.context["job"]
            keys = self._with_legs = {
                (source, source_id): list(transit) for source, source_id, transit in
                Shipment.objects.filter(agency_id=job.agency_id, legs__isnull=False).exclude(source_id="")
                .values_list("source", "source_id", "transit_countries").distinct()}
        return keys


PARTY_SUFFIXES = ("", "_country", "_registration_number")
PARTY_COLUMNS = frozenset(f"{role}{suffix}" for role in PARTY_ROLES for suffix in PARTY_SUFFIXES)


def _party_columns(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Take the party columns off a shipments row: {role: (name, country, registration number)} and errors."""
    parties: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for role in PARTY_ROLES:
        name = validators.normalize_name(row.pop(role, "") or "")
        raw_country, raw_number = row.pop(f"{role}_country", "") or "", row.pop(f"{role}_registration_number", "") or ""
        try:
            country = validators.normalize_country(str(raw_country).strip())
        except validators.InvalidValue as exc:
            errors[f"{role}_country"] = [str(exc)]
            country = ""
        try:
            number = validators.normalize_registration_number(str(raw_number), country)
        except validators.InvalidValue as exc:
            errors[f"{role}_registration_number"] = [str(exc)]
            number = ""
        if not name and (raw_country or raw_number):
            errors.setdefault(role, []).append(f"A {role} country or registration number needs the {role}'s name.")
        if name:
            parties[role] = (name, country, number)
    return {"__parties__": parties}, errors


def _shipment_kind() -> Kind:
    fields = _ImportShipmentSerializer().fields
    writable = {name for name, f in fields.items() if not f.read_only}
    return Kind("", _ImportShipmentSerializer, frozenset(writable | PARTY_COLUMNS), frozenset({"reference"}),
                model=Shipment, take_columns=_party_columns)


class _LinkEndField(serializers.Field):
    """A link's end in an import file: `person:<id>` or `organization:<id>` (or the API's {"type", "id"}), or
    the source_id of an entity of the agency's from the job's source. Answers are remembered for the job."""

    default_error_messages = {
        "does_not_exist": "No {type} with id {id} is available here.",
        "no_source_id": "No person or organisation of your agency has source_id {value!r} from source {source!r}.",
        "invalid": 'Expected "person:<id>", "organization:<id>" or the source_id of an entity from this source.',
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.found: dict[str, Entity] = {}

    def to_representation(self, value: Any) -> Any:
        return str(value.pk)

    def to_internal_value(self, data: Any) -> Entity:
        if isinstance(data, dict):
            data = f"{data.get('type')}:{data.get('id')}"
        if not isinstance(data, str) or not data.strip():
            self.fail("invalid")
        data = data.strip()
        if data not in self.found:
            self.found[data] = self._find(data)
        return self.found[data]

    def _find(self, value: str) -> Entity:
        job = self.context["job"]
        entities = Entity.objects.filter(agency_id=job.agency_id, archived=False)
        kind, _, rest = value.partition(":")
        if kind in (EntityType.PERSON, EntityType.ORGANIZATION) and rest:
            try:
                pk = serializers.UUIDField().to_internal_value(rest)
            except serializers.ValidationError:
                self.fail("invalid")
            entity = entities.filter(pk=pk, type=kind).first()
            if entity is None:
                self.fail("does_not_exist", type=kind, id=pk)
            return entity
        entity = entities.filter(source=job.source, source_id=value).order_by("created_at").first()
        if entity is None:
            self.fail("no_source_id", value=value, source=job.source)
        return entity


class _ImportLinkSerializer(LinkSerializer):
    source = _LinkEndField()  # type: ignore[assignment]
    target = _LinkEndField()  # type: ignore[assignment]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        _ruled(lambda: rules.check_link(attrs))
        return attrs


def _link_columns(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A links row's `source_id` is the link's own id in the source (its provenance id)."""
    link_id = str(row.pop("source_id", "") or "").strip()
    if len(link_id) > 200:
        return {}, {"source_id": ["Ensure this field has no more than 200 characters."]}
    return ({"provenance_id": link_id} if link_id else {}), {}


def _link_kind() -> Kind:
    fields = _ImportLinkSerializer().fields
    writable = {name for name, f in fields.items() if not f.read_only}
    return Kind("", _ImportLinkSerializer, frozenset(writable | {"source_id"}), frozenset({"kind", "source", "target"}),
                model=Link, take_columns=_link_columns, key=("provenance_source", "provenance_id"))


def _ofac_columns(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """An SDN entry's type (imports.ofac made the row), or the error of a line of the wrong shape."""
    error = row.pop("__error__", None)
    entity_type = row.pop("__type__", EntityType.ORGANIZATION)
    return {"type": entity_type}, ({"": [error]} if error else {})


def _ofac_kind() -> Kind:
    return Kind("", ImportOrganizationSerializer, frozenset(), frozenset(), take_columns=_ofac_columns,
                serializer_for=lambda extra: (ImportPersonSerializer if extra.get("type") == EntityType.PERSON
                                              else ImportOrganizationSerializer))


KINDS: dict[str, Callable[[], Kind]] = {
    "persons": lambda: _entity_kind(EntityType.PERSON, ImportPersonSerializer),
    "organizations": lambda: _entity_kind(EntityType.ORGANIZATION, ImportOrganizationSerializer),
    "links": _link_kind,
    "shipments": _shipment_kind,
    "ftm": lambda: Kind("", ImportPersonSerializer, frozenset(), frozenset()),
    "ofac_sdn": _ofac_kind,
}
SUPPORTEDKINDS = tuple(KINDS)
