"""JSON snapshots of model instances, and the field-by-field difference the audit trail records."""

from __future__ import annotations

from typing import Any

from django.db import models

SKIPPED = {"updated_at", "created_at", "version"}


def _value(value: Any) -> Any:
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str | dict):
        return value
    return str(value)


def snapshot(obj: models.Model) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in SKIPPED or field.name == "id":
            continue
        name = field.attname
        data[field.name if field.is_relation else name] = _value(getattr(obj, name))
    if obj.pk is not None and not obj._state.adding:
        for field in obj._meta.many_to_many:
            data[field.name] = sorted(str(pk) for pk in getattr(obj, field.name).values_list("pk", flat=True))
        # Rows a record owns outright (a shipment's legs, …), named by the model's `snapshot_children`:
        # a change to them is a change to the record, audited with it.
        for name in getattr(obj, "snapshot_children", ()):
            data[name] = [_child(child) for child in getattr(obj, name).all()]
    return data


def _child(obj: models.Model) -> dict[str, Any]:
    return {field.name: _value(getattr(obj, field.attname)) for field in obj._meta.concrete_fields
            if not field.primary_key and not field.is_relation}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for every field that changed."""
    keys = sorted(set(before) | set(after))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}
