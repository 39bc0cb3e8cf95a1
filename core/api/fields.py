"""Relation fields whose choices are scoped, so a foreign or invisible id is a 400 on that field."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.relations import MANY_RELATION_KWARGS


def owner_agency_id(field: serializers.Field) -> Any:
    """The agency whose records a relation may name: the edited object's, else the caller's."""
    serializer = field.parent
    while serializer is not None and getattr(serializer, "instance", None) is None and serializer.parent:
        serializer = serializer.parent
    instance = getattr(serializer, "instance", None)
    if instance is not None and not isinstance(instance, list | QuerySet):
        agency_id = getattr(instance, "agency_id", None)
        if agency_id is None and hasattr(instance, "case"):
            agency_id = instance.case.agency_id
        if agency_id is not None:
            return agency_id
    case = field.context.get("case")
    if case is not None:
        return case.agency_id
    return field.context["request"].user.agency_id


class _Slugs(list):
    """The slugs of a to-many relation as read from a column of the record's own query."""


class SlugsManyRelatedField(serializers.ManyRelatedField):
    """A to-many slug relation that answers from the record's `<source>_slugs` attribute when its query read one
    (a column of the slugs, in the relation's order: `core.compiled.kept_subquery`), and reads the relation
    otherwise (a record just written, or read some other way)."""

    def get_attribute(self, instance: Any) -> Any:
        slugs = getattr(instance, f"{self.source}_slugs", None)
        return _Slugs(slugs) if slugs is not None else super().get_attribute(instance)

    def to_representation(self, iterable: Any) -> list[Any]:
        return list(iterable) if isinstance(iterable, _Slugs) else super().to_representation(iterable)


class SlugsFromColumn(serializers.SlugRelatedField):
    """A slug relation whose `many=True` form is a SlugsManyRelatedField."""

    @classmethod
    def many_init(cls, *args: Any, **kwargs: Any) -> Any:  # DRF's RelatedField.many_init, with our list field
        return SlugsManyRelatedField(child_relation=cls(*args, **kwargs),
                                     **{key: value for key, value in kwargs.items() if key in MANY_RELATION_KWARGS})


class AgencySlugField(SlugsFromColumn):
    """A slug relation limited to records of the owning agency."""

    def __init__(self, *, agency_lookup: str = "agency_id", **kwargs: Any) -> None:
        self.agency_lookup = agency_lookup
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        assert queryset is not None  # DRF asserts a writable relation has a queryset
        return queryset.filter(**{self.agency_lookup: owner_agency_id(self)})


ENTITY_TYPES = ("person", "organization")


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": list(ENTITY_TYPES)},
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string", "readOnly": True},
        },
        "required": ["type", "id"],
    }
)
class EntityRefField(serializers.Field):
    """`{"type": "person"|"organization", "id": UUID}` in; the same plus `name` out."""

    default_error_messages = {
        "invalid": 'Expected {{"type": "person"|"organization", "id": UUID}}.',
        "does_not_exist": "No {type} with id {id} is available here.",
    }

    def to_representation(self, value: Any) -> dict[str, Any]:
        return {"type": value.type, "id": str(value.pk), "name": value.name}

    def to_internal_value(self, data: Any) -> Any:
        from core import policy
        from entities.models import Entity, as_typed

        if not isinstance(data, dict) or data.get("type") not in ENTITY_TYPES or "id" not in data:
            self.fail("invalid")
        try:
            entity_id = serializers.UUIDField().to_internal_value(data["id"])
        except serializers.ValidationError:
            self.fail("invalid")
        user = self.context["request"].user
        candidates = policy.visible(user, Entity).filter(agency_id=owner_agency_id(self), archived=False)
        entity = candidates.filter(pk=entity_id, type=data["type"]).first()
        if entity is None:
            self.fail("does_not_exist", type=data["type"], id=entity_id)
        return as_typed(entity)
