"""The columns of each import kind's files, written the way the import reads them (API.md § Bulk import), so that
a list exported as CSV or XLSX (`?format=csv`) imports again unchanged.

Nothing is declared twice: the columns are the import kind's own (`kinds.KINDS`: the writable fields of the
serializer that checks a row, in its order, then the columns taken off a row first), and each value is written by
that serializer's own field, then flattened as `kinds.row_to_data` splits it (`;`-separated lists, identifiers as
`scheme:number:country`, addresses' texts with one `address_country`). A column the import reads that no rule
here can write fails when the table is made, not in a file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.relations import PKOnlyObject

from shipments.models import PARTY_ROLES

from .kinds import KINDS, LIST_FIELDS, PARTY_SUFFIXES, Kind

LIST_SEPARATOR = ";"  # what kinds._split splits a list cell on


def list_cell(values: Iterable[Any]) -> str:
    return LIST_SEPARATOR.join("" if v is None else str(v) for v in values)


def identifier_cell(items: Sequence[dict[str, Any]]) -> str:
    """`scheme:number:country` items, as kinds._identifier reads them (a number may itself hold `:`)."""
    return list_cell(f"{i.get('scheme', '')}:{i.get('number', '')}:{i.get('country') or ''}" for i in items or ())


def address_country(items: Sequence[dict[str, Any]]) -> str:
    """The one `address_country` of a row: the country the addresses share (a file row gives one for them all)."""
    countries = {(item.get("country") or "") for item in items or ()}
    return countries.pop() if len(countries) == 1 else ""


def ref_cell(entity: Any) -> str:
    """A link's end as an import reads it: `person:<id>` or `organization:<id>`."""
    return "" if entity is None else f"{entity.type}:{entity.pk}"


def scalar_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


Cell = Callable[[Any], str]


def _field_cell(field: serializers.Field) -> Cell:
    """A column written by the serializer field the import checks it with: the API's own text of the value."""
    if isinstance(field, serializers.ListField | serializers.ListSerializer):
        if field.field_name not in LIST_FIELDS:
            raise LookupError(f"{field.field_name} is a list the import does not split (kinds.LIST_FIELDS).")
        if field.field_name == "identifiers":
            return lambda obj: identifier_cell(getattr(obj, "identifiers", None) or [])
        if field.field_name == "addresses":
            return lambda obj: list_cell(a.get("text", "") for a in getattr(obj, "addresses", None) or [])

        def many(obj: Any) -> str:
            value = field.get_attribute(obj)
            return list_cell(field.to_representation(value)) if value else ""

        return many

    def one(obj: Any) -> str:
        try:
            value = field.get_attribute(obj)
        except serializers.SkipField:
            return ""
        if value is None or (isinstance(value, PKOnlyObject) and value.pk is None):
            return ""
        return scalar_cell(field.to_representation(value))

    return one


def _party_cell(role: str, suffix: str) -> Cell:
    attribute = {"": "name", "_country": "jurisdiction", "_registration_number": "registration_number"}[suffix]

    def party(obj: Any) -> str:
        entity = getattr(obj, role)
        return "" if entity is None else getattr(entity, attribute) or ""

    return party


# The columns that are not a field of the kind's serializer: what writes each (kinds' take_columns reads them).
EXTRA: dict[str, dict[str, Cell]] = {
    "persons": {"address_country": lambda obj: address_country(obj.addresses)},
    "organizations": {"address_country": lambda obj: address_country(obj.addresses)},
    "links": {"source_id": lambda obj: obj.provenance_id or ""},
    "shipments": {f"{role}{suffix}": _party_cell(role, suffix) for role in PARTY_ROLES for suffix in PARTY_SUFFIXES},
}
# Fields whose cell is not the serializer field's text: a link's ends (the API answers them as objects).
OWN: dict[str, dict[str, Cell]] = {
    "links": {"source": lambda obj: ref_cell(obj.source), "target": lambda obj: ref_cell(obj.target)},
}
# What a row's cells read beyond the record's own columns (one join, not a query a row), and of those rows.
RELATED: dict[str, tuple[str, ...]] = {"links": ("source", "target"), "shipments": PARTY_ROLES}
RELATED_FIELDS = ("type", "name", "jurisdiction", "registration_number")
# Model fields a cell reads that are not a column's source.
READS: dict[str, tuple[str, ...]] = {"persons": ("type", "addresses", "identifiers"),
                                     "organizations": ("type", "addresses", "identifiers"),
                                     "links": ("provenance_id",)}


@dataclass(frozen=True)
class ImportTable:
    """The export of one import kind: its header, and a record's cells in that order."""

    kind: str
    header: tuple[str, ...]
    cells: tuple[Cell, ...]
    reads: tuple[str, ...]  # the model fields the cells read, and no other (an export reads every row)

    def row(self, obj: Any) -> list[str]:
        return [cell(obj) for cell in self.cells]

    def rows_of(self, queryset: QuerySet) -> QuerySet:
        """The records as the cells read them: their parties or ends joined, nothing prefetched nor deferred that
        no column reads (an export reads every row, so a query per row is what this avoids)."""
        related = RELATED.get(self.kind, ())
        return (queryset.prefetch_related(None).select_related(None).select_related(*related)
                .only(*self.reads, *(f"{name}__{field}" for name in related for field in RELATED_FIELDS)))


@functools.cache
def table(kind_name: str) -> ImportTable:
    kind: Kind = KINDS[kind_name]()
    fields = {name: f for name, f in kind.serializer().fields.items() if not f.read_only}
    own, extra = OWN.get(kind_name, {}), EXTRA.get(kind_name, {})
    header = [name for name in fields if name in kind.columns] + [name for name in extra if name not in fields]
    cells = [own.get(name) or extra.get(name) or _field_cell(fields[name]) for name in header]
    if set(header) != set(kind.columns):
        missing, unknown = sorted(set(kind.columns) - set(header)), sorted(set(header) - set(kind.columns))
        raise LookupError(f"The {kind_name} export and import disagree on columns: the import reads {missing} "
                          f"that the export does not write; the export writes {unknown} that the import ignores.")
    model = kind.model
    own_fields = {f.name for f in model._meta.concrete_fields}
    reads: set[str] = {str(fields[name].source) for name in header
                       if name in fields and fields[name].source in own_fields}
    reads |= {*READS.get(kind_name, ()), *RELATED.get(kind_name, ())}
    return ImportTable(kind_name, tuple(header), tuple(cells), tuple(sorted(reads)))
