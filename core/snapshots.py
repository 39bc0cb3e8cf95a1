"""JSON snapshots of model instances, and the field-by-field difference the audit trail records."""

from __future__ import annotations

import functools
import json
import uuid
from json.encoder import encode_basestring as _string  # a str as JSON, non-ASCII kept (as ensure_ascii=False)
from typing import Any

from django.db import models

SKIPPED = {"updated_at", "created_at", "version"}
_PLAIN = frozenset({str, int, bool, float, type(None)})


def _value(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str | dict):
        return value
    return str(value)


def snapshot(obj: models.Model, *, related: bool = True) -> dict[str, Any]:
    """The record's fields as JSON values; with `related`, its many-to-many ids and owned children too
    (a bulk writer that changes neither leaves them out rather than query them row by row)."""
    data = _fields(type(obj), lambda name: getattr(obj, name))
    if related and obj.pk is not None and not obj._state.adding:
        for field in obj._meta.many_to_many:
            data[field.name] = sorted(str(pk) for pk in getattr(obj, field.name).values_list("pk", flat=True))
        # Rows a record owns outright (a shipment's legs, …), named by the model's `snapshot_children`:
        # a change to them is a change to the record, audited with it.
        for name in getattr(obj, "snapshot_children", ()):
            data[name] = [_child(child) for child in getattr(obj, name).all()]
    return data


def created_json(model: type[models.Model], row: dict[str, Any]) -> str:
    """`diff({}, snapshot(obj))` of a new row given as a dict of attname → value (core.bulk.NewRows, or an
    instance's __dict__) once saved, related records included (none yet: `[null, []]`, as the API's create
    event of a record without them), as the canonical JSON text the audit trail hashes and stores (keys
    sorted, compact, UTF-8 kept), written straight from the row's values field by field. The audit writer's
    fast path (audit.services.changes_text); use that."""
    parts = []
    for key, attname, to_str in _created_plan(model):
        if attname is None:  # many-to-many ids and owned children: a new row has none yet
            parts.append(f'"{key}":[null,[]]')
            continue
        value = row.get(attname)
        if value is None:
            continue
        if type(value) is uuid.UUID:  # ids repeat (the agency, parties): their text is made once
            text = _UUID_TEXT.get(value)
            if text is None:
                text = f'"{value}"'
                if len(_UUID_TEXT) < 100_000:
                    _UUID_TEXT[value] = text
            parts.append(f'"{key}":[null,{text}]')
        elif to_str or isinstance(value, str):  # text choices too: their str() is their value
            parts.append(f'"{key}":[null,{_string(str(value))}]')
        elif type(value) is bool:
            parts.append(f'"{key}":[null,{"true" if value else "false"}]')
        elif type(value) is list and all(type(item) is str for item in value):
            parts.append(f'"{key}":[null,[{",".join(map(_string, value))}]]')
        else:
            text = json.dumps(_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
            parts.append(f'"{key}":[null,{text}]')
    return "{" + ",".join(parts) + "}"


_UUID_TEXT: dict[uuid.UUID, str] = {}
_STRINGIFIED = (models.DecimalField, models.DateField, models.UUIDField)  # DateTimeField is a DateField


@functools.cache
def _created_plan(model: type[models.Model]) -> list[tuple[str, str | None, bool]]:
    """(snapshot key, attname, whether `_value` of the field's values is `str`) of each snapshot field, and
    (name, None, False) of each many-to-many field and owned children's name (`snapshot_children`)."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    plan: list[tuple[str, str | None, bool]] = [
        (key, attname, isinstance(fields[attname], _STRINGIFIED) or fields[attname].is_relation)
        for key, attname in _names(model)]
    plan += [(name, None, False) for name in [f.name for f in model._meta.many_to_many]
             + list(getattr(model, "snapshot_children", ()))]
    return sorted(plan, key=lambda item: item[0])


@functools.cache
def _names(model: type[models.Model]) -> list[tuple[str, str]]:
    """(snapshot key, attname) of the fields a snapshot holds."""
    return [(f.name if f.is_relation else f.attname, f.attname) for f in model._meta.concrete_fields
            if f.name not in SKIPPED and f.name != "id"]


def _fields(model: type[models.Model], get: Any) -> dict[str, Any]:
    return {key: _value(get(attname)) for key, attname in _names(model)}


def _child(obj: models.Model) -> dict[str, Any]:
    return {field.name: _value(getattr(obj, field.attname)) for field in obj._meta.concrete_fields
            if not field.primary_key and not field.is_relation}


def snapshot_values(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values as a snapshot holds them (records by id, dates and decimals as text)."""
    return {key: _value(value) for key, value in values.items()}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for every field that changed."""
    keys = sorted(set(before) | set(after))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}
