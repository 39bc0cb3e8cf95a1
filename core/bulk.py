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
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import connection, models, transaction
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


# --- upserts: the private fast path of the apps' bulk services (entities.bulk, shipments.bulk) ---------------

Key = tuple[str, str]


def by_key(model: Any, agency_id: Any, keys: set[Key], columns: tuple[str, str]) -> Any:
    """The agency's records with these (source label, id in the source) keys, each found by the unique index.
    (A plain `source_id IN (…)` lets the planner scan every row of the source: a job's own earlier batches too.)"""
    quote = connection.ops.quote_name
    table, label, key = quote(model._meta.db_table), quote(columns[0]), quote(columns[1])
    sql = ("SELECT t.* FROM unnest(%s::text[], %s::text[]) AS k(label, key) CROSS JOIN LATERAL "  # noqa: S608
           f"(SELECT * FROM {table} t WHERE t.agency_id = %s AND t.{label} = k.label "
           f"AND t.{key} = k.key AND t.{key} <> '' LIMIT 1) t")
    sources, ids = zip(*keys, strict=True) if keys else ((), ())
    return model.objects.raw(sql, [list(sources), list(ids), agency_id])


def apply_changes(target: Any, values: dict[str, Any]) -> list[str]:
    """Set on `target` (an instance, or a new row's dict) the values that differ from what it holds; the
    names of those fields."""
    if isinstance(target, dict):
        diffs = [name for name, value in values.items() if target.get(name) != value]
        target.update(values)
        return diffs
    diffs = [name for name, value in values.items() if getattr(target, name) != value]
    for name in diffs:
        setattr(target, name, values[name])
    return diffs


def bulk_update(model: Any, rows: list[Any], fields: list[str]) -> None:
    """Write changed rows in bulk, bumping each row's version and update time as a save would."""
    now = timezone.now()
    for row in rows:
        row.version += 1
        row.updated_at = now
    model.objects.bulk_update(rows, [*fields, "version", "updated_at"], batch_size=1000)


CREATED, UPDATED, UNCHANGED, FAILED = "created", "updated", "unchanged", "failed"


@dataclass
class Upsert:
    """What a bulk upsert found (one outcome per row: created, updated, unchanged, or failed: a rule of the
    record it names refused the row, `problems[row index]` says why) and what it writes: the
    new records (NewRows dicts or unsaved instances) with COPY, the changed ones (version bumped, derived
    fields with them), an audit event for each, and one `records_changed` for the batch.

    `write()` does it in the caller's transaction (a savepoint of it); a caller that writes elsewhere (an
    import's writer thread) may `prepare()` the events first, where it reads."""

    model: Any
    agency: Any
    actor: Any
    outcomes: list[str] = field(default_factory=list)
    new: dict[Key, Any] = field(default_factory=dict)
    changed: dict[Any, tuple[Any, dict[str, Any]]] = field(default_factory=dict)  # pk → (record, snapshot before)
    fields: set[str] = field(default_factory=set)
    problems: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    derived: tuple[str, ...] = ()
    object_type: Callable[[Any], str] | None = None  # of a record (a row or an instance); the model's name if None
    label: Callable[[Any], str] | None = None  # its model label for the outbox; the model's if None
    events: Any = None

    @property
    def created(self) -> int:
        return len(self.new)

    def count(self, outcome: str) -> int:
        return self.outcomes.count(outcome)

    def _type(self, obj: Any) -> str:
        return self.object_type(obj) if self.object_type is not None else self.model._meta.model_name

    def _label(self, obj: Any) -> str:
        return self.label(obj) if self.label is not None else self.model._meta.label_lower

    def prepare(self) -> Any:
        """The audit events of what `write` writes (the usual create and update events), made once."""
        if self.events is None:
            from audit.services import prepare_events  # the audit trail writes with this module's COPY

            from .snapshots import diff, snapshot

            model, type_of = self.model, self.object_type
            events = [{"action": "create", "object_type": type_of(obj) if type_of else model._meta.model_name,
                       "object_id": str(row["id"]), "case_id": row.get("case_id"), "created": (model, row)}
                      for obj in self.new.values() for row in (obj if type(obj) is dict else obj.__dict__,)]
            for obj, before in self.changed.values():
                events.append({"action": "update", "object_type": self._type(obj), "object_id": str(obj.pk),
                               "case_id": getattr(obj, "case_id", None),
                               "changes": diff(before, snapshot(obj, related=False))})
            self.events = prepare_events(events, agency=self.agency, actor=self.actor)
        return self.events

    def write(self) -> None:
        from audit.services import record_many

        from .outbox import records_changed

        events = self.prepare()
        with transaction.atomic():
            if self.new:
                copy_insert(self.model, self.new.values())
            if self.changed:
                bulk_update(self.model, [obj for obj, _ in self.changed.values()],
                            [*sorted(self.fields - set(self.derived)), *self.derived])
            record_many(events)
            ids: dict[str, list[Any]] = {}
            for obj in self.new.values():
                ids.setdefault(self._label(obj), []).append(obj["id"] if isinstance(obj, dict) else obj.pk)
            for obj, _ in self.changed.values():
                ids.setdefault(self._label(obj), []).append(obj.pk)
            for label, pks in ids.items():
                records_changed(label, pks)


def upsert(model: Any, *, agency: Any, actor: Any, rows: list[dict[str, Any]], key: tuple[str, str],
           build: Callable[[dict[str, Any]], Any], derive: Callable[[Any], None] | None = None,
           derived: tuple[str, ...] = (), existing: dict[Key, Any] | None = None,
           check: Callable[[Any, dict[str, Any]], dict[str, list[str]] | None] | None = None,
           **options: Any) -> Upsert:
    """Sort `rows` (field values by attname, each holding its upsert key `key`) into new records (made by
    `build`), changed ones and unchanged ones, reading only: the agency's records with those keys are found by
    the unique index unless given as `existing`. A key met twice: the later row applies to the record the
    earlier made or changed. `derive` recomputes a changed instance's derived fields (named by `derived`);
    `check(stored record, values)` may refuse a row that changes a stored record: {field: [messages]}."""
    label, name = key
    if existing is None:
        keys = {(values[label], values[name]) for values in rows}
        existing = {(getattr(obj, label), getattr(obj, name)): obj
                    for obj in by_key(model, getattr(agency, "pk", agency), keys, key)}
    result = Upsert(model, agency, actor, derived=derived, **options)
    outcomes, new, changed, fields = result.outcomes, result.new, result.changed, result.fields
    for index, values in enumerate(rows):
        k = (values[label], values[name])
        stored = existing.get(k)
        target = stored if stored is not None else new.get(k)
        if target is None:
            new[k] = build(values)
            outcomes.append(CREATED)
            continue
        if check is not None and stored is not None and (problems := check(stored, values)):
            result.problems[index] = problems
            outcomes.append(FAILED)
            continue
        before = snapshot_before(target) if stored is not None and stored.pk not in changed else None
        diffs = apply_changes(target, values)
        if not diffs:
            outcomes.append(UNCHANGED)
            continue
        fields.update(diffs)
        outcomes.append(UPDATED)
        if derive is not None and not isinstance(target, dict):
            derive(target)
        if before is not None:
            changed[target.pk] = (target, before)
    return result


def snapshot_before(obj: Any) -> dict[str, Any]:
    from .snapshots import snapshot

    return snapshot(obj, related=False)
