"""Running an import job: read the file as it streams, validate each row with the API's own rules,
upsert by (source, source_id) in batches, count every row, report every bad field.

Accounting: every data row ends in exactly one of created, updated, unchanged, failed_rows.
Modes: partial writes good rows; atomic first checks every row (nothing written), then writes
everything in one transaction only when no row is bad; dry_run only checks.
Identity: a row upserts by (source, source_id); a row without a source_id is keyed by its content
(`row:` and a digest of its values), so that importing the same file again changes nothing.
Batches: each batch's rows, their audit events, its bad rows and the job's counts are committed
together; a partial job whose worker died resumes after the last committed batch.
Audit: the usual `create`/`update` event for every record written (organisations created for shipment
parties included), appended to the agency's chain a batch at a time under one lock of its head, and
one `import` event per job with the file's SHA-256 and the counts. All of a job's events carry the
job's id as their request id.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from rest_framework import serializers

from audit.services import PreparedEvents, prepare_events, record, record_many
from core import context
from core.bulk import NewRows, copy_insert
from core.snapshots import created_json, diff, snapshot
from entities import validators
from entities.api.serializers import LinkSerializer, OrganizationSerializer, PersonSerializer
from entities.models import Entity, EntityType, Link, OrganizationKind
from entities.normalize import company_core
from shipments.api.serializers import ShipmentSerializer
from shipments.models import PARTY_ROLES, Shipment

from . import ftm
from .models import ImportJob, ImportKind, ImportMode, ImportRowError, ImportStatus
from .readers import BadFile, Table, _check_text, open_table
from .rows import RowChecker

BATCH_SIZE = 5000
LIST_FIELDS = ("names", "nationalities", "transit_countries", "phones", "emails", "addresses", "identifiers")


def heartbeat_stale() -> datetime.timedelta:
    """How old a running job's heartbeat may get before its worker counts as dead (read at call time)."""
    return datetime.timedelta(seconds=settings.IMPORT_HEARTBEAT_STALE_SECONDS)


# --- row validation ---------------------------------------------------------------------------


class _ImportPersonSerializer(PersonSerializer):
    def source_taken(self, attrs: dict[str, Any], source_id: str) -> bool:
        return False  # an import upserts by source_id instead


class _ImportOrganizationSerializer(OrganizationSerializer):
    def source_taken(self, attrs: dict[str, Any], source_id: str) -> bool:
        return False


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


def _entity_kind(entity_type: str, serializer: type[serializers.Serializer]) -> Kind:
    fields = serializer().fields
    writable = {name for name, f in fields.items() if not f.read_only}
    return Kind(entity_type, serializer, frozenset(writable | {"address_country", "source", "source_id"}),
                frozenset({"name"}))


class _ImportShipmentSerializer(ShipmentSerializer):
    """A shipment row: parties come as name/country/registration columns, legs as transit_countries."""

    class Meta(ShipmentSerializer.Meta):
        fields = [f for f in ShipmentSerializer.Meta.fields
                  if f not in ("legs", "cases", "licence", *PARTY_ROLES)]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        source, source_id = attrs.pop("source", None), attrs.pop("source_id", None)
        attrs = super().validate(attrs)  # without source_id: an import upserts instead of refusing
        if source is not None:
            attrs["source"] = source
        if source_id is not None:
            attrs["source_id"] = source_id
        return attrs


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


_KINDS: dict[str, Callable[[], Kind]] = {
    "persons": lambda: _entity_kind(EntityType.PERSON, _ImportPersonSerializer),
    "organizations": lambda: _entity_kind(EntityType.ORGANIZATION, _ImportOrganizationSerializer),
    "links": _link_kind,
    "shipments": _shipment_kind,
    "ftm": lambda: Kind("", _ImportPersonSerializer, frozenset(), frozenset()),
}
SUPPORTED_KINDS = tuple(_KINDS)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Counts:
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0

    @classmethod
    def of(cls, job: ImportJob) -> Counts:
        """The counts a job committed so far (where a resumed job carries on from)."""
        return cls(job.processed_rows, job.created, job.updated, job.unchanged, job.failed_rows)


def content_key(values: dict[str, Any]) -> str:
    """The identity of a row that has no source_id: a digest of its checked values."""
    canonical = json.dumps({k: v for k, v in values.items() if k not in ("source", "source_id")},
                           sort_keys=True, default=str, ensure_ascii=False)
    return "row:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


class Importer:
    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.kind = _KINDS[job.kind]()
        self.parties = Parties(job)
        self.would_create: dict[tuple[str, str], Any] = {}
        self.dry_digests: dict[tuple[str, str], str] = {}
        self.new_rows = NewRows(self.kind.model)
        self._checkers: dict[type, RowChecker] = {}
        actor = job.created_by
        self.context = {"job": job, "request": SimpleNamespace(user=actor if actor is not None
                                                              else SimpleNamespace(agency_id=job.agency_id))}

    def check(self, serializer_class: type[serializers.Serializer], data: dict[str, Any]) -> tuple[Any, dict]:
        """(validated data, None) or (None, {field: [messages]}) of one row, by the serializer's rules."""
        checker = self._checkers.get(serializer_class)
        if checker is None:
            checker = self._checkers[serializer_class] = RowChecker(serializer_class(context=self.context))
        attrs, detail = checker.check(data)
        if attrs is not None:
            return attrs, {}
        problems: dict[str, list[str]] = {}
        for name, message in flatten(detail):
            problems.setdefault(name, []).append(message)
        return None, problems

    # rows → (row number, model data) or errors
    def checked_rows(self, table: Table, errors_out: list[ImportRowError] | None,
                     skip: int = 0) -> Iterator[tuple[int, Any]]:
        for number, row in enumerate(table.rows, start=1):
            if number <= skip:
                continue  # committed by an earlier run of this job
            extra: dict[str, Any] = {}
            extra_errors: dict[str, list[str]] = {}
            if self.kind.take_columns is not None and "__bad_json__" not in row and "__not_object__" not in row:
                extra, extra_errors = self.kind.take_columns(row)
            data, errors = row_to_data(row)
            for name, messages in extra_errors.items():
                errors.setdefault(name, []).extend(messages)
            values = None
            if not errors.get(""):
                values, problems = self.check(self.kind.serializer, data)
                for name, messages in problems.items():
                    errors.setdefault(name, []).extend(messages)
            if errors or values is None:
                if errors_out is not None:
                    errors_out.extend(ImportRowError(job=self.job, row=number, field=name, message=message)
                                      for name, messages in errors.items() for message in messages)
                yield number, None
                continue
            for name in [n for n, v in values.items() if isinstance(v, models.Model)]:
                values[f"{name}_id"] = values.pop(name).pk  # compared and written by id
            if "transit_countries" in values:
                values["transit_countries"] = list(dict.fromkeys(values["transit_countries"]))
            values.update(extra)
            label, key = self.kind.key
            values[label] = values.get(label) or self.job.source
            if not values.get(key):
                values[key] = content_key(values)
            yield number, values

    def run(self, *, write: bool, errors: bool, resume: Counts | None = None) -> Counts:
        if self.job.kind == "ftm":
            return self.run_ftm(write=write, errors=errors)
        counts = resume or Counts()
        self.parties = Parties(self.job)  # a dry pass's unsaved organisations must not leak into a writing one
        self.would_create, self.dry_digests = {}, {}
        with self.job.file.open("rb") as binary, Writer() as self.writer:
            table = open_table(binary)
            self._check_columns(table)
            pending: list[ImportRowError] = []
            batch: list[dict[str, Any]] = []
            for _number, values in self.checked_rows(table, pending if errors else None, skip=counts.total):
                counts.total += 1
                if values is None:
                    counts.failed += 1
                else:
                    batch.append(values)
                if counts.total % BATCH_SIZE == 0:
                    self._commit(counts, pending, self._flush(batch, counts, write))
                    batch = []
            self._commit(counts, pending, self._flush(batch, counts, write))
        return counts

    def _commit(self, counts: Counts, pending: list[ImportRowError], write: Callable[[], None] | None) -> None:
        """One batch: its records, their audit events, its bad rows and the job's counts in one transaction,
        so that a job resumed after its worker died carries on right after the last batch committed."""
        at, errors = dataclasses.replace(counts), list(pending)
        pending.clear()

        def commit() -> None:
            with transaction.atomic():
                # The batch's records and the job's checkpoint commit together, so a commit lost in a crash
                # loses both: the job resumes before that batch. So its WAL need not be flushed at once.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit = off")
                if write is not None:
                    write()
                if errors:
                    ImportRowError.objects.bulk_create(errors)
                ImportJob.objects.filter(pk=self.job.pk).update(
                    processed_rows=at.total, created=at.created, updated=at.updated, unchanged=at.unchanged,
                    failed_rows=at.failed, heartbeat_at=timezone.now())

        self.writer.submit(commit)

    def _events(self, created: list[Any], changed: list[tuple[Any, dict[str, Any]]]) -> PreparedEvents:
        """The usual create and update events of what a batch writes, ready for record_many to chain."""
        model = self.kind.model

        def create(obj: Any) -> dict[str, Any]:
            if isinstance(obj, dict):  # a new row (core.bulk.NewRows): its changes go straight to JSON text
                return {"action": "create", "object_type": model._meta.model_name, "object_id": str(obj["id"]),
                        "changes_json": created_json(model, obj)}
            return {"action": "create", "object_type": obj._meta.model_name, "object_id": str(obj.pk),
                    "changes": diff({}, snapshot(obj, related=False))}

        def update(obj: Any, before: dict[str, Any]) -> dict[str, Any]:
            return {"action": "update", "object_type": obj._meta.model_name, "object_id": str(obj.pk),
                    "changes": diff(before, snapshot(obj, related=False))}

        return prepare_events([*(create(obj) for obj in created), *(update(obj, before) for obj, before in changed)],
                              agency=self.job.agency, actor=self.job.created_by)

    # --- FollowTheMoney ------------------------------------------------------------------------

    def run_ftm(self, *, write: bool, errors: bool) -> Counts:
        counts = Counts()
        self.would_create, self.dry_digests = {}, {}
        pending: list[ImportRowError] = []

        def bad(number: int, problems: dict[str, list[str]]) -> None:
            counts.failed += 1
            if errors:
                pending.extend(ImportRowError(job=self.job, row=number, field=name, message=message)
                               for name, messages in problems.items() for message in messages)

        # In line: the links of the second pass must find the entities the first pass wrote.
        with self.job.file.open("rb") as binary, Writer(threaded=False) as self.writer:
            head = binary.read(4096)
            binary.seek(0)
            if not head.strip():
                raise BadFile("The file is empty.")
            _check_text(binary)
            if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
                raise BadFile("An ftm file is FollowTheMoney JSON lines: one entity object a line.")
            known = ftm.addresses(binary)
            batch: list[dict[str, Any]] = []
            link_rows = 0
            for number, item, problem in ftm.lines(binary):
                counts.total += 1
                schema = item.get("schema") if item is not None else None
                if item is None:
                    bad(number, {"": [problem]})
                elif schema == "Address":
                    counts.unchanged += 1  # folded into the entities that name it
                elif schema in ftm.LINKS:
                    link_rows += 1  # counted in the second pass
                    counts.total -= 1
                elif schema in ftm.PERSON_SCHEMATA or schema in ftm.ORG_SCHEMATA:
                    person = schema in ftm.PERSON_SCHEMATA
                    serializer_class = _ImportPersonSerializer if person else _ImportOrganizationSerializer
                    values, problems = self.check(serializer_class, ftm.entity_row(item, known))
                    if values is None:
                        bad(number, problems)
                    else:
                        values["source"] = self.job.source
                        values["__type__"] = EntityType.PERSON if person else EntityType.ORGANIZATION
                        batch.append(values)
                else:
                    bad(number, {"schema": [f"FollowTheMoney schema {schema!r} is not imported."]})
                if len(batch) >= BATCH_SIZE:
                    self._commit(counts, pending, self._flush(batch, counts, write))
                    batch = []
            self._commit(counts, pending, self._flush(batch, counts, write))
            if link_rows:
                links: list[tuple[int, dict[str, Any]]] = []
                for number, item, _ in ftm.lines(binary):
                    if item is not None and item.get("schema") in ftm.LINKS:
                        links.append((number, item))
                        if len(links) >= BATCH_SIZE:
                            self._commit(counts, pending, self._flush_links(links, counts, write, bad))
                            links = []
                self._commit(counts, pending, self._flush_links(links, counts, write, bad))
        return counts

    def _flush_links(self, links: list[tuple[int, dict[str, Any]]], counts: Counts, write: bool,
                     bad: Callable[[int, dict[str, list[str]]], None]) -> Callable[[], None] | None:
        if not links:
            return None
        source = self.job.source
        wanted = {ftm._first(item.get("properties", {}).get(prop)) for _, item in links
                  for prop in ftm.LINKS[item["schema"]][1:]}
        ends: dict[str, Any] = {e.source_id: e for e in Entity.objects.filter(
            agency_id=self.job.agency_id, source=source, source_id__in=wanted - {""})}
        for (src, source_id), entity in self.would_create.items():
            if src == source and source_id in wanted:
                ends.setdefault(source_id, entity)
        existing = {link.provenance_id: link for link in Link.objects.filter(
            agency_id=self.job.agency_id, provenance_source=source,
            provenance_id__in=[str(item["id"])[:200] for _, item in links])}
        new: dict[str, Link] = {}
        changed: dict[Any, tuple[Link, dict[str, Any]]] = {}
        fields: set[str] = set()
        for number, item in links:
            counts.total += 1
            values, problems = ftm.link_values(item, ends)
            if values is None:
                bad(number, problems)
                continue
            target = existing.get(values["provenance_id"]) or new.get(values["provenance_id"])
            if target is None:
                new[values["provenance_id"]] = Link(agency_id=self.job.agency_id, provenance_source=source, **values)
                counts.created += 1
                continue
            before = snapshot(target, related=False)
            diffs = _apply_changes(target, values)
            if not diffs:
                counts.unchanged += 1
                continue
            fields.update(diffs)
            counts.updated += 1
            if target.pk in existing:
                changed.setdefault(target.pk, (target, before))
        if not write:
            return None

        events = self._events(list(new.values()), list(changed.values()))

        def write_links() -> None:
            copy_insert(Link, new.values())
            if changed:
                _bulk_update(Link, [obj for obj, _ in changed.values()], sorted(fields))
            record_many(events)

        return write_links

    def _check_columns(self, table: Table) -> None:
        if table.columns is None:
            return
        unknown = [c for c in table.columns if c not in self.kind.columns]
        missing = sorted(self.kind.required - set(table.columns))
        problems = []
        if missing:
            problems.append(f"missing column(s): {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s): {', '.join(repr(c) for c in unknown[:20])}")
        if problems:
            raise BadFile(f"The header does not fit a {self.job.kind} file: {'; '.join(problems)}. "
                          f"Columns taken: {', '.join(sorted(self.kind.columns))}.")

    def _flush(self, batch: list[dict[str, Any]], counts: Counts, write: bool) -> Callable[[], None] | None:
        """Sorts a batch into new, changed and unchanged records (reading only) and counts them; returns the
        writing of the new and changed ones (with their audit events), or None when there is none to do."""
        if not batch:
            return None
        agency_id = self.job.agency_id
        model: Any = self.kind.model
        label, key_name = self.kind.key
        keys = {(v[label], v[key_name]) for v in batch}
        self.writer.before_reading(keys)
        created_parties = self.parties.resolve(batch) if model is Shipment else []
        existing = {(getattr(obj, label), getattr(obj, key_name)): obj
                    for obj in _by_source_id(model, agency_id, keys, self.kind.key)}
        new: dict[tuple[str, str], Any] = {}
        changed: dict[Any, tuple[Any, dict[str, Any]]] = {}
        update_fields: set[str] = set()
        now = timezone.now()
        for values in batch:
            entity_type = values.pop("__type__", None) or self.kind.entity_type
            key = (values[label], values[key_name])
            target = existing.get(key) or new.get(key)  # the same source_id twice in a batch: the later row wins
            if target is None and not write:
                # A dry run writes nothing, so it remembers what its earlier batches would have created.
                digest = content_key(values)
                if key in self.dry_digests:
                    same = self.dry_digests[key] == digest
                    counts.unchanged += same
                    counts.updated += not same
                    self.dry_digests[key] = digest
                    continue
                self.dry_digests[key] = digest
            if target is None:
                if model is Entity:  # an instance: its search text and keys are derived by the model
                    entity = Entity(agency_id=agency_id, type=entity_type, **values)
                    if entity.type == EntityType.ORGANIZATION and not entity.kind:
                        entity.kind = OrganizationKind.COMPANY
                    entity.refresh_derived()
                    new[key] = entity
                else:
                    new[key] = self.new_rows.new({"agency_id": agency_id, **values}, now)
                counts.created += 1
                continue
            before = snapshot(target, related=False) if key in existing else None
            diffs = _apply_changes(target, values)
            if not diffs:
                counts.unchanged += 1
                continue
            update_fields.update(diffs)
            counts.updated += 1
            if isinstance(target, Entity):
                target.refresh_derived()
            if before is not None:
                changed.setdefault(target.pk, (target, before))
        if not write:
            if self.job.kind == "ftm":
                self.would_create.update(new)  # links of a dry run end at these
            return None
        self.writer.in_flight(keys)
        events = self._events([*created_parties, *new.values()], list(changed.values()))

        def write_batch() -> None:
            copy_insert(Entity, created_parties)
            copy_insert(model, new.values())
            if changed:
                derived = ["search_text", "identifier_numbers", "name_keys"] if model is Entity else []
                _bulk_update(model, [obj for obj, _ in changed.values()], [*sorted(update_fields), *derived])
            record_many(events)

        return write_batch


def _by_source_id(model: Any, agency_id: Any, keys: set[tuple[str, str]], columns: tuple[str, str]) -> Any:
    """The agency's records with these (source, source_id) keys, each found by the unique index. (A plain
    `source_id IN (…)` lets the planner scan every row of the source: an import's own earlier batches too.)"""
    quote = connection.ops.quote_name
    table, label, key = quote(model._meta.db_table), quote(columns[0]), quote(columns[1])
    sql = ("SELECT t.* FROM unnest(%s::text[], %s::text[]) AS k(label, key) CROSS JOIN LATERAL "  # noqa: S608
           f"(SELECT * FROM {table} t WHERE t.agency_id = %s AND t.{label} = k.label "
           f"AND t.{key} = k.key AND t.{key} <> '' LIMIT 1) t")
    sources, ids = zip(*keys, strict=True) if keys else ((), ())
    return model.objects.raw(sql, [list(sources), list(ids), agency_id])


class Writer:
    """Commits a job's batches in order. Outside any transaction of its caller it commits them in a thread of
    its own, on that thread's own database connection, so that PostgreSQL writes one batch while the next is
    read and checked; a batch whose records the batch in flight writes waits for it first. Inside a
    transaction (an atomic import's write pass, a caller's own block) it writes in line, in that transaction.
    """

    def __init__(self, *, threaded: bool = True) -> None:
        threaded = threaded and not transaction.get_connection().in_atomic_block
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="import-writer") if threaded else None
        self.pending: Future | None = None
        self.keys: set[tuple[str, str]] = set()

    SWITCH_INTERVAL = 0.001  # seconds; CPython's default, 0.005, starves a thread that waits on its socket

    def __enter__(self) -> Writer:
        self.switch_interval = sys.getswitchinterval()
        if self.pool is not None:
            # The checking thread never waits; the writing one does, at every COPY buffer: it gets the GIL
            # back sooner, and so keeps PostgreSQL busy, when the interpreter switches threads more often.
            sys.setswitchinterval(self.SWITCH_INTERVAL)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            sys.setswitchinterval(self.switch_interval)
            if self.pool is not None:
                self.pool.submit(_close_connection).result()
                self.pool.shutdown()

    def submit(self, commit: Callable[[], None]) -> None:
        if self.pool is None:
            commit()
            return
        self.wait()
        self.pending = self.pool.submit(commit)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()  # a failed commit fails the run here
        self.keys = set()

    def in_flight(self, keys: set[tuple[str, str]]) -> None:
        self.keys = keys

    def before_reading(self, keys: set[tuple[str, str]]) -> None:
        if self.keys & keys:
            self.wait()


def _close_connection() -> None:
    transaction.get_connection().close()


class Parties:
    """Shipment parties to the agency's organisations: registration number + country, else normalised name
    (company_core) + country, else a new organisation. Remembered for the whole job."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.by_number: dict[tuple[str, str], Any] = {}
        self.by_name: dict[tuple[str, str], Any] = {}
        self.created = 0

    def resolve(self, batch: list[dict[str, Any]]) -> list[Entity]:
        """Sets each row's party ids; returns the organisations it made for them, to be written."""
        specs = list(dict.fromkeys(spec for values in batch for spec in values["__parties__"].values()))
        self._load(specs)
        new: list[Entity] = []
        ids: dict[tuple[str, str, str], Any] = {}
        for name, country, number in specs:
            core = company_core(name)
            pk = self._find(core, country, number)
            if pk is None:
                entity = Entity(agency_id=self.job.agency_id, type=EntityType.ORGANIZATION, name=name,
                                jurisdiction=country, registration_number=number, kind=OrganizationKind.COMPANY,
                                source=self.job.source)
                entity.refresh_derived()
                new.append(entity)
                pk = self._remember(entity.pk, core, country, number)
            ids[(name, country, number)] = pk
        self.created += len(new)
        for values in batch:
            for role, spec in values.pop("__parties__").items():
                values[f"{role}_id"] = ids[spec]
        return new

    def _find(self, core: str, country: str, number: str) -> Any:
        if number and (number, country) in self.by_number:
            return self.by_number[(number, country)]
        return self.by_name.get((core, country))

    def _remember(self, pk: Any, core: str, country: str, number: str) -> Any:
        if number:
            self.by_number.setdefault((number, country), pk)
        return self.by_name.setdefault((core, country), pk)

    def _load(self, specs: list[tuple[str, str, str]]) -> None:
        """Remember the agency's organisations the specs may name (ids only: memory grows with the distinct
        parties of a job, not with its rows)."""
        numbers = {(n, c) for _, c, n in specs if n and (n, c) not in self.by_number}
        names = {(core, c) for name, c, _ in specs if (core := company_core(name), c) not in self.by_name}
        orgs = Entity.objects.filter(agency_id=self.job.agency_id, type=EntityType.ORGANIZATION, archived=False)
        if numbers:
            q = models.Q()
            for number, country in numbers:
                q |= models.Q(registration_number=number, jurisdiction=country)
            for pk, number, country in orgs.filter(q).order_by("created_at").values_list(
                    "pk", "registration_number", "jurisdiction"):
                self.by_number.setdefault((number, country), pk)
        cores = sorted({core for core, _ in names if core})
        if cores:
            found = orgs.filter(name_keys__overlap=cores, jurisdiction__in={c for _, c in names})
            for pk, country, keys in found.order_by("created_at").values_list("pk", "jurisdiction", "name_keys"):
                for core in keys:
                    if (core, country) in names:
                        self.by_name.setdefault((core, country), pk)


def sha256_of(job: ImportJob) -> str:
    digest = hashlib.sha256()
    with job.file.open("rb") as binary:
        for chunk in iter(lambda: binary.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _finish(job: ImportJob, counts: Counts | None, *, status: str, error: str = "") -> None:
    if counts is not None:
        job.total_rows, job.processed_rows = counts.total, counts.total
        job.created, job.updated, job.unchanged, job.failed_rows = (counts.created, counts.updated,
                                                                    counts.unchanged, counts.failed)
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.save()
    changes: dict[str, Any] = {"sha256": job.sha256, "kind": job.kind, "mode": job.mode, "source": job.source,
                               "status": status, "total_rows": job.total_rows, "created": job.created,
                               "updated": job.updated, "unchanged": job.unchanged, "failed_rows": job.failed_rows}
    if error:
        changes["error"] = error
    record(action="import", obj=job, actor=job.created_by, agency=job.agency, changes=changes)


def _reset(job: ImportJob) -> None:
    ImportRowError.objects.filter(job=job).delete()
    job.total_rows = job.processed_rows = job.created = job.updated = job.unchanged = job.failed_rows = 0


def run_job(job_id: Any) -> ImportJob:
    """Run (or resume after a dead worker) one job; a finished job is left as it is. Every audit event
    of the run carries the job's id as its request id."""
    token = context.begin(context.RequestContext(request_id=str(job_id)))
    try:
        return _run_job(job_id)
    finally:
        context.end(token)


def _run_job(job_id: Any) -> ImportJob:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update(of=("self",)).select_related("agency", "created_by").get(pk=job_id)
        if job.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED):
            return job
        now = timezone.now()
        if job.status == ImportStatus.RUNNING and job.heartbeat_at and now - job.heartbeat_at < heartbeat_stale():
            return job  # another worker is on it
        # A partial job's committed batches stand (with their counts and bad rows): it carries on after them.
        # The other modes start over: their writes, if any, were all in one transaction that died too.
        resume = (Counts.of(job) if job.status == ImportStatus.RUNNING and job.mode == ImportMode.PARTIAL
                  and job.kind != ImportKind.FTM else None)
        job.status, job.started_at, job.heartbeat_at = ImportStatus.RUNNING, job.started_at or now, now
        if resume is None:
            _reset(job)
        job.save()
    if job.kind not in _KINDS:
        _finish(job, None, status=ImportStatus.FAILED, error=f"Imports of kind {job.kind!r} are not supported yet.")
        return job
    importer = Importer(job)
    try:
        if not job.sha256:
            job.sha256 = sha256_of(job)
            ImportJob.objects.filter(pk=job.pk).update(sha256=job.sha256)
        if job.mode == ImportMode.PARTIAL:
            counts = importer.run(write=True, errors=True, resume=resume)
        else:
            counts = importer.run(write=False, errors=True)
            if job.mode == ImportMode.ATOMIC:
                if counts.failed:
                    _finish(job, counts, status=ImportStatus.FAILED,
                            error=f"{counts.failed} bad row(s): an atomic import writes nothing.")
                    return job
                with transaction.atomic():
                    counts = importer.run(write=True, errors=False)
    except BadFile as exc:
        _reset(job)
        _finish(job, None, status=ImportStatus.FAILED, error=str(exc))
        return job
    _finish(job, counts, status=ImportStatus.SUCCEEDED)
    return job


def _apply_changes(target: Any, values: dict[str, Any]) -> list[str]:
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


def _bulk_update(model: Any, rows: list[Any], fields: list[str]) -> None:
    """Write changed rows in bulk, bumping each row's version and update time as a save would."""
    now = timezone.now()
    for row in rows:
        row.version += 1
        row.updated_at = now
    model.objects.bulk_update(rows, [*fields, "version", "updated_at"], batch_size=BATCH_SIZE)
