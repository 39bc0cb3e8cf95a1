from __future__ import annotations

import copy
import datetime
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from django.utils.datastructures import MultiValueDict
from rest_framework import ISO_8601, serializers
from rest_framework.fields import CharField, DateTimeField, Field, ListField, SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

if TYPE_CHECKING:
    from accounts.models import Agency

BASE_READ_ONLY = ("id", "created_at", "updated_at", "version", "archived")


def _contains_nul(value: Any) -> bool:
    """Whether a NUL character is anywhere in a value: PostgreSQL can neither store nor compare one."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


_GENERIC = object()  # a value the plain path leaves to DRF's own


def _plain_converter(field: Field) -> Callable[[Any], Any]:
    """What `field.to_representation` does with a value that is not None, as directly as it can be said."""
    if type(field) is CharField:
        return str  # CharField.to_representation
    if type(field) is ListField and type(field.child) is CharField:
        return lambda items: [str(item) if item is not None else None for item in items]
    if type(field) is DateTimeField and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == ISO_8601:
        return _iso_datetime(field)
    return field.to_representation


def _iso_datetime(field: DateTimeField) -> Callable[[Any], Any]:
    """DateTimeField.to_representation in ISO 8601 for an aware datetime already in the field's time zone (the
    database's, UTC, as PostgreSQL answers): DRF looks the current time zone up for each value, a tenth of a
    page's time. Any other value goes DRF's way."""
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    if not isinstance(zone, datetime.tzinfo):  # naive datetimes (USE_TZ off): DRF's way
        return field.to_representation

    def convert(value: Any) -> Any:
        if type(value) is not datetime.datetime or value.tzinfo is None or value.utcoffset() != zone.utcoffset(value):
            return field.to_representation(value)
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


def _plain_plan(serializer: serializers.Serializer) -> list[tuple[str, str | None, Callable[[Any], Any], Field]]:
    """Each readable field: its name, the one attribute it reads when DRF's `Field.get_attribute` would read just
    that (else None), how its value is turned into JSON, and the field."""
    plan = []
    for field in serializer._readable_fields:
        plain = (type(field).get_attribute is Field.get_attribute and field.source != "*"
                 and len(field.source_attrs) == 1)
        plan.append((cast(str, field.field_name), field.source_attrs[0] if plain else None,
                     _plain_converter(field), field))
    return plan


class PlainRepresentation(serializers.Serializer):
    """DRF's `Serializer.to_representation`, with the same output, made cheaper for the fields that read one
    attribute of the record (most of them): the attribute is read and converted directly, instead of through
    `get_attribute`'s and each field's generic steps, which are most of the time of a page of records. A value
    the plain path cannot take as DRF would (a callable, a missing attribute or key) goes DRF's way, as do the
    fields that compute their value (methods, relations, `source="*"`)."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = self.__dict__.get("_plain_plan")
        if plan is None:
            plan = self.__dict__["_plain_plan"] = _plain_plan(self)
        mapping = isinstance(instance, Mapping)
        ret: dict[str, Any] = {}
        for name, attr, convert, field in plan:
            if attr is not None:
                try:
                    value = instance[attr] if mapping else getattr(instance, attr)
                except Exception:
                    value = _GENERIC
                if value is None:
                    ret[name] = None
                    continue
                if value is not _GENERIC and not callable(value):
                    ret[name] = convert(value)
                    continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[name] = None if check_for_none is None else field.to_representation(attribute)
        return ret


# Each serializer class's fields as ModelSerializer works them out from its Meta and model (get_fields).
_BUILT_FIELDS: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()

# Field classes that hold nothing of their own but their arguments until `bind` (which sets the name, parent, label
# and source on the copy it is given): a shallow copy of a pristine one is as good as DRF's deep copy, which builds
# the field again from its arguments (and a list's child, and the child's fields), for every field of every
# serializer of every request. A list whose child reads nothing of its parents (no method field, no relation)
# shares that child between its copies. Any other field is deep-copied, as DRF does.
_FLAT_FIELDS = (serializers.BooleanField, serializers.CharField, serializers.ChoiceField, serializers.DateField,
                serializers.DateTimeField, serializers.DecimalField, serializers.FloatField, serializers.IntegerField,
                serializers.JSONField, serializers.ReadOnlyField, serializers.UUIDField)
_SHALLOW: weakref.WeakKeyDictionary[type, frozenset[str]] = weakref.WeakKeyDictionary()


def _context_free(field: Any) -> bool:
    """Whether a field reads nothing through its parents (the serializer's context, a method of theirs)."""
    if isinstance(field, serializers.ListField):
        return _context_free(field.child)
    if isinstance(field, serializers.Serializer) and not isinstance(field, serializers.ListSerializer):
        return all(_context_free(child) for child in field.fields.values())
    return isinstance(field, _FLAT_FIELDS)


def _shallow(field: Any) -> bool:
    return isinstance(field, serializers.SerializerMethodField) or _context_free(field)


class BaseSerializer(PlainRepresentation, serializers.ModelSerializer):
    """Common fields read-only and ignored on input; a field the resource does not have is a 400."""

    def get_fields(self) -> dict[str, Any]:
        # ModelSerializer works the fields out of the model for every instance, a few milliseconds of each request;
        # they depend on the class alone, so each class's are worked out once and copied (`_shallow`). (A subclass
        # that adapts them to its instance does so on the copy.)
        built = _BUILT_FIELDS.get(type(self))
        if built is None:
            built = _BUILT_FIELDS[type(self)] = super().get_fields()
            _SHALLOW[type(self)] = frozenset(name for name, field in built.items() if _shallow(field))
        shallow = _SHALLOW[type(self)]
        return {name: copy.copy(field) if name in shallow else copy.deepcopy(field) for name, field in built.items()}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors: dict[str, Any] = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            # A NUL is refused before any field looks it up (a slug lookup would make PostgreSQL fail).
            values = cast(MultiValueDict, data).lists() if hasattr(data, "getlist") else data.items()
            errors.update({name: ["Null characters are not allowed."] for name, value in values
                           if name not in errors and _contains_nul(value)})
            if errors:
                # Name every bad field at once: the others are checked too.
                rest = [name for name in data if name not in errors]
                try:
                    super().to_internal_value(MultiValueDict({n: data.getlist(n) for n in rest})
                                              if hasattr(data, "getlist") else {n: data[n] for n in rest})
                except serializers.ValidationError as exc:
                    detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
                    errors = {**detail, **errors}
                raise serializers.ValidationError(errors)
        elif data is not None and not hasattr(data, "getlist"):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}
            )
        return super().to_internal_value(data)


class AgencyOwnedSerializer(BaseSerializer):
    """`agency` is shown as its code and always taken from the caller."""

    agency: serializers.SlugRelatedField[Agency] = serializers.SlugRelatedField(slug_field="code", read_only=True)
