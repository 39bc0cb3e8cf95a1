"""Inserting many rows with PostgreSQL COPY, and building them without model instances.

`bulk_create` builds one INSERT with a parameter per value, and a model instance per row costs more
than checking the row did; for an import of a hundred thousand rows both dominate. Here a new row is a
plain dict (attname → value) holding what a save would write: the fields' defaults, both timestamps,
then the given values. COPY streams such rows (or instances) to the table.
"""

from __future__ import annotations

import datetime
import ipaddress
import operator
import os
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.db import connection, models
from django.utils import timezone
from psycopg.types.json import Jsonb

_AS_IS = (models.CharField, models.TextField, models.DecimalField, models.DateField, models.UUIDField,
          models.BooleanField, models.IntegerField, models.ForeignKey)  # DateTimeField is a DateField


def _writer(field: models.Field) -> Callable[[Any], Any] | None:
    """How a value of `field` goes to a binary COPY: None when psycopg dumps the Python value as it is."""
    if isinstance(field, models.JSONField):
        return lambda value: value if isinstance(value, Jsonb) else Jsonb(value, dumps=_json)
    if isinstance(field, models.GenericIPAddressField):
        return lambda value: ipaddress.ip_address(value) if value else None
    if isinstance(field, _AS_IS) or field.get_internal_type() == "ArrayField":
        return None
    raise TypeError(f"copy_insert does not write {type(field).__name__} ({field}) yet")


def _json(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def _stamped(field: models.Field) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


class _Uuid4s:
    """uuid.uuid4() values, with the random bytes read from the OS a thousand ids at a time (one system call
    per id is most of what uuid4 costs)."""

    def __init__(self) -> None:
        self.pool, self.at = b"", 0

    def __call__(self) -> uuid.UUID:
        if self.at >= len(self.pool):
            self.pool, self.at = os.urandom(16 * 1000), 0
        self.at += 16
        return uuid.UUID(bytes=self.pool[self.at - 16:self.at], version=4)


class NewRows:
    """Makes the dict of a new row of `model`, as a save of a new instance would write it."""

    def __init__(self, model: type[models.Model]) -> None:
        fields = model._meta.concrete_fields
        made = [f for f in fields if f.has_default() and callable(f.default) and not _stamped(f)]
        self.fixed = {f.attname: f.get_default() for f in fields if f not in made and not _stamped(f)}
        self.made = [(f.attname, _Uuid4s() if f.default is uuid.uuid4 else f.default) for f in made]
        self.stamped = [f.attname for f in fields if _stamped(f)]

    def new(self, values: dict[str, Any], now: datetime.datetime | None = None) -> dict[str, Any]:
        """The row; `now` (timezone.now() when not given) for its auto_now fields: a batch may share one."""
        row = dict(self.fixed)
        for name, make in self.made:
            row[name] = make()
        if self.stamped:
            now = now or timezone.now()
            for name in self.stamped:
                row[name] = now
        row.update(values)
        return row


def copy_insert(model: type[models.Model], rows: Iterable[dict[str, Any] | models.Model]) -> int:
    """Write new rows of `model` (NewRows dicts, or unsaved instances) in one COPY; how many were written."""
    fields = list(model._meta.concrete_fields)
    stamped = [f for f in fields if _stamped(f)]
    values_of = operator.itemgetter(*(f.attname for f in fields))  # a row's values in column order, in C
    writers = [(i, write) for i, f in enumerate(fields) if (write := _writer(f)) is not None]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    written = 0
    with connection.cursor() as cursor, cursor.copy(
            f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        # The columns' types given once: psycopg then picks each value's dumper by column, not by value.
        copy.set_types([re.sub(r"\(.*?\)", "", f.db_type(connection) or "").strip() for f in fields])
        for row in rows:
            if isinstance(row, models.Model):
                for field in stamped:
                    field.pre_save(row, True)
                row._state.adding = False
                row = row.__dict__
            values = values_of(row)
            if writers:
                values = list(values)
                for i, write in writers:
                    values[i] = write(values[i])
            copy.write_row(values)
            written += 1
    return written
