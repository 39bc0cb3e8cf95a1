"""Running an import job: read the file as it streams, validate each row with the API's own rules,
upsert by (source, source_id) in batches, count every row, report every bad field.

Accounting: every data row ends in exactly one of created, updated, unchanged, failed_rows.
Modes: partial writes good rows; atomic first checks every row (nothing written), then writes
everything in one transaction only when no row is bad; dry_run only checks.
Audit: one `import` event per job (file SHA-256, counts, and the ids created and updated) in the
agency's hash chain, written through audit.services.record. Per-row create/update events are not
written: a chain event per row would cost one locked round trip each.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.db import models, transaction
from django.utils import timezone
from rest_framework import serializers

from audit.services import record
from entities import validators
from entities.api.serializers import OrganizationSerializer, PersonSerializer
from entities.models import Entity, EntityType, Link, OrganizationKind
from entities.normalize import company_core
from shipments.api.serializers import ShipmentSerializer
from shipments.models import PARTY_ROLES, Shipment

from . import ftm
from .models import ImportJob, ImportMode, ImportRowError, ImportStatus
from .readers import BadFile, Table, _check_text, open_table

BATCH_SIZE = 1000
HEARTBEAT_STALE = datetime.timedelta(minutes=5)
LIST_FIELDS = ("names", "nationalities", "transit_countries", "phones", "emails", "addresses", "identifiers")


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
    take_columns: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, list[str]]]] | None = None


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
    return parties, errors


def _shipment_kind() -> Kind:
    fields = _ImportShipmentSerializer().fields
    writable = {name for name, f in fields.items() if not f.read_only}
    return Kind("", _ImportShipmentSerializer, frozenset(writable | PARTY_COLUMNS), frozenset({"reference"}),
                model=Shipment, take_columns=_party_columns)


_KINDS: dict[str, Callable[[], Kind]] = {
    "persons": lambda: _entity_kind(EntityType.PERSON, _ImportPersonSerializer),
    "organizations": lambda: _entity_kind(EntityType.ORGANIZATION, _ImportOrganizationSerializer),
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
    created_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)


class Importer:
    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.kind = _KINDS[job.kind]()
        self.parties = Parties(job)
        self.would_create: dict[tuple[str, str], Any] = {}
        self._serializers: dict[type, Any] = {}
        actor = job.created_by
        self.context = {"request": SimpleNamespace(user=actor if actor is not None
                                                   else SimpleNamespace(agency_id=job.agency_id))}

    def row_serializer(self, serializer_class: type[serializers.Serializer], data: dict[str, Any]) -> Any:
        """One serializer per job and class, given each row in turn: building a serializer's fields
        (deep copies of every declared field) costs more than validating a row with them."""
        serializer = self._serializers.get(serializer_class)
        if serializer is None:
            serializer = self._serializers[serializer_class] = serializer_class(data=data, context=self.context)
        serializer.initial_data = data
        for cached in ("_validated_data", "_errors", "_data"):
            serializer.__dict__.pop(cached, None)
        return serializer

    # rows → (row number, model data) or errors
    def checked_rows(self, table: Table, errors_out: list[ImportRowError] | None) -> Iterator[tuple[int, Any]]:
        for number, row in enumerate(table.rows, start=1):
            parties: dict[str, Any] = {}
            if self.kind.take_columns is not None and "__bad_json__" not in row and "__not_object__" not in row:
                parties, party_errors = self.kind.take_columns(row)
            else:
                party_errors = {}
            data, errors = row_to_data(row)
            for name, messages in party_errors.items():
                errors.setdefault(name, []).extend(messages)
            serializer = None
            if not errors.get(""):
                serializer = self.row_serializer(self.kind.serializer, data)
                if not serializer.is_valid():
                    for name, message in flatten(serializer.errors):
                        errors.setdefault(name, []).append(message)
            if errors or serializer is None:
                if errors_out is not None:
                    errors_out.extend(ImportRowError(job=self.job, row=number, field=name, message=message)
                                      for name, messages in errors.items() for message in messages)
                yield number, None
            else:
                values = dict(serializer.validated_data)
                for name in [n for n, v in values.items() if isinstance(v, models.Model)]:
                    values[f"{name}_id"] = values.pop(name).pk  # compared and written by id
                if "transit_countries" in values:
                    values["transit_countries"] = list(dict.fromkeys(values["transit_countries"]))
                if parties or self.kind.take_columns is not None:
                    values["__parties__"] = parties
                values["source"] = values.get("source") or self.job.source
                values.setdefault("source_id", "")
                yield number, values

    def run(self, *, write: bool, errors: bool) -> Counts:
        if self.job.kind == "ftm":
            return self.run_ftm(write=write, errors=errors)
        counts = Counts()
        self.parties = Parties(self.job)  # a dry pass's unsaved organisations must not leak into a writing one
        with self.job.file.open("rb") as binary:
            table = open_table(binary)
            self._check_columns(table)
            pending_errors: list[ImportRowError] = []
            batch: list[dict[str, Any]] = []
            for _number, values in self.checked_rows(table, pending_errors if errors else None):
                counts.total += 1
                if values is None:
                    counts.failed += 1
                else:
                    batch.append(values)
                if counts.total % BATCH_SIZE == 0:
                    self._flush(batch, counts, write)
                    batch = []
                    if pending_errors:
                        ImportRowError.objects.bulk_create(pending_errors)
                        pending_errors = []
                    self._progress(counts.total)
            self._flush(batch, counts, write)
            if pending_errors:
                ImportRowError.objects.bulk_create(pending_errors)
            self._progress(counts.total)
        return counts

    # --- FollowTheMoney ------------------------------------------------------------------------

    def run_ftm(self, *, write: bool, errors: bool) -> Counts:
        counts = Counts()
        self.would_create = {}
        pending: list[ImportRowError] = []

        def bad(number: int, problems: dict[str, list[str]]) -> None:
            counts.failed += 1
            if errors:
                pending.extend(ImportRowError(job=self.job, row=number, field=name, message=message)
                               for name, messages in problems.items() for message in messages)

        def step(batch: list[dict[str, Any]], flush: Callable[[list[dict[str, Any]], Counts, bool], None],
                 force: bool = False) -> list[dict[str, Any]]:
            if batch and (force or len(batch) >= BATCH_SIZE):
                flush(batch, counts, write)
                batch = []
                if pending:
                    ImportRowError.objects.bulk_create(pending)
                    pending.clear()
                self._progress(counts.total)
            return batch

        with self.job.file.open("rb") as binary:
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
                    serializer = self.row_serializer(serializer_class, ftm.entity_row(item, known))
                    if not serializer.is_valid():
                        problems: dict[str, list[str]] = {}
                        for name, message in flatten(serializer.errors):
                            problems.setdefault(name, []).append(message)
                        bad(number, problems)
                    else:
                        values = dict(serializer.validated_data)
                        values["source"] = self.job.source
                        values["__type__"] = EntityType.PERSON if person else EntityType.ORGANIZATION
                        batch.append(values)
                else:
                    bad(number, {"schema": [f"FollowTheMoney schema {schema!r} is not imported."]})
                batch = step(batch, self._flush)
            step(batch, self._flush, force=True)
            if link_rows:
                links: list[tuple[int, dict[str, Any]]] = []
                for number, item, _ in ftm.lines(binary):
                    if item is not None and item.get("schema") in ftm.LINKS:
                        links.append((number, item))
                        if len(links) >= BATCH_SIZE:
                            self._flush_links(links, counts, write, bad)
                            links = []
                            step([{}], lambda *a: None, force=True)
                self._flush_links(links, counts, write, bad)
            step([{}], lambda *a: None, force=True)
        return counts

    def _flush_links(self, links: list[tuple[int, dict[str, Any]]], counts: Counts, write: bool,
                     bad: Callable[[int, dict[str, list[str]]], None]) -> None:
        if not links:
            return
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
        changed: dict[Any, Link] = {}
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
            diffs = _apply_changes(target, values)
            if not diffs:
                counts.unchanged += 1
                continue
            fields.update(diffs)
            counts.updated += 1
            if target.pk in existing:
                changed[target.pk] = target
        if not write:
            return
        created = Link.objects.bulk_create(list(new.values()), batch_size=BATCH_SIZE)
        counts.created_ids.extend(str(link.pk) for link in created)
        if changed:
            _bulk_update(Link, list(changed.values()), sorted(fields))
            counts.updated_ids.extend(str(pk) for pk in changed)

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

    def _progress(self, processed: int) -> None:
        # Its own short transaction (outside any atomic block of the run) so that clients see it.
        ImportJob.objects.filter(pk=self.job.pk).update(processed_rows=processed, heartbeat_at=timezone.now())

    def _flush(self, batch: list[dict[str, Any]], counts: Counts, write: bool) -> None:
        if not batch:
            return
        agency_id = self.job.agency_id
        model: Any = self.kind.model
        if self.kind.take_columns is not None:
            self.parties.resolve(batch, write)
        keys = {(v["source"], v["source_id"]) for v in batch if v["source_id"]}
        existing: dict[tuple[str, str], Any] = {}
        if keys:
            q = models.Q()
            for source in {k[0] for k in keys}:
                q |= models.Q(source=source, source_id__in=[k[1] for k in keys if k[0] == source])
            for entity in model.objects.filter(q, agency_id=agency_id):
                existing[(entity.source, entity.source_id)] = entity
        new: dict[int, Any] = {}
        changed: dict[Any, Any] = {}
        seen_new: dict[tuple[str, str], Any] = {}
        update_fields: set[str] = set()
        for values in batch:
            entity_type = values.pop("__type__", None) or self.kind.entity_type
            key = (values["source"], values["source_id"])
            target = existing.get(key) if values["source_id"] else None
            if target is None and values["source_id"] and key in seen_new:
                target = seen_new[key]  # the same source_id twice in one batch: the later row wins
            if target is None:
                if model is Entity:
                    entity = Entity(agency_id=agency_id, type=entity_type, **values)
                    if entity.type == EntityType.ORGANIZATION and not entity.kind:
                        entity.kind = OrganizationKind.COMPANY
                else:
                    entity = model(agency_id=agency_id, **values)
                _refresh(entity)
                new[id(entity)] = entity
                if values["source_id"]:
                    seen_new[key] = entity
                counts.created += 1
                continue
            diffs = _apply_changes(target, values)
            if not diffs:
                counts.unchanged += 1
                continue
            update_fields.update(diffs)
            if id(target) in new:
                counts.updated += 1
                continue
            _refresh(target)
            changed[target.pk] = target
            counts.updated += 1
        if not write:
            self.would_create.update({(e.source, e.source_id): e for e in new.values() if e.source_id})
            return
        created = model.objects.bulk_create(list(new.values()), batch_size=BATCH_SIZE)
        counts.created_ids.extend(str(e.pk) for e in created)
        if changed:
            derived = ["search_text", "identifier_numbers"] if model is Entity else []
            _bulk_update(model, list(changed.values()), [*sorted(update_fields), *derived])
            counts.updated_ids.extend(str(pk) for pk in changed)


def _refresh(obj: Any) -> None:
    if isinstance(obj, Entity):
        obj.refresh_derived()


class Parties:
    """Shipment parties to the agency's organisations: registration number + country, else normalised name
    (company_core) + country, else a new organisation. Remembered for the whole job."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.by_number: dict[tuple[str, str], Any] = {}
        self.by_name: dict[tuple[str, str], Any] = {}
        self.created = 0

    def resolve(self, batch: list[dict[str, Any]], write: bool) -> None:
        wanted = [spec for values in batch for spec in values["__parties__"].values()]
        self._load(wanted)
        new: list[Entity] = []
        for name, country, number in wanted:
            if self._find(name, country, number) is None:
                entity = Entity(agency_id=self.job.agency_id, type=EntityType.ORGANIZATION, name=name,
                                jurisdiction=country, registration_number=number, kind=OrganizationKind.COMPANY,
                                source=self.job.source)
                entity.refresh_derived()
                new.append(entity)
                self._remember(entity, company_core(name))
        if new and write:
            Entity.objects.bulk_create(new, batch_size=BATCH_SIZE)
            self.created += len(new)
        for values in batch:
            for role, (name, country, number) in values.pop("__parties__").items():
                found = self._find(name, country, number)
                values[f"{role}_id"] = found.pk if found is not None else None

    def _find(self, name: str, country: str, number: str) -> Any:
        if number and (number, country) in self.by_number:
            return self.by_number[(number, country)]
        return self.by_name.get((company_core(name), country))

    def _remember(self, entity: Entity, core: str) -> None:
        if entity.registration_number:
            self.by_number.setdefault((entity.registration_number, entity.jurisdiction), entity)
        self.by_name.setdefault((core, entity.jurisdiction), entity)

    def _load(self, wanted: list[tuple[str, str, str]]) -> None:
        numbers = {(n, c) for _, c, n in wanted if n and (n, c) not in self.by_number}
        names = {(company_core(name), c) for name, c, _ in wanted if (company_core(name), c) not in self.by_name}
        orgs = Entity.objects.filter(agency_id=self.job.agency_id, type=EntityType.ORGANIZATION, archived=False)
        if numbers:
            q = models.Q()
            for number, country in numbers:
                q |= models.Q(registration_number=number, jurisdiction=country)
            for entity in orgs.filter(q).order_by("created_at"):
                self.by_number.setdefault((entity.registration_number, entity.jurisdiction), entity)
        cores = sorted({core for core, _ in names if core})
        for start in range(0, len(cores), 200):
            q = models.Q()
            for core in cores[start:start + 200]:
                q |= models.Q(search_text__contains=core)
            countries = {c for core, c in names if core in cores[start:start + 200]}
            for entity in orgs.filter(q, jurisdiction__in=countries).order_by("created_at"):
                for variant in [entity.name, *entity.names]:
                    key = (company_core(variant), entity.jurisdiction)
                    if key in names:
                        self.by_name.setdefault(key, entity)


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
    if counts is not None and (counts.created_ids or counts.updated_ids):
        changes["created_ids"], changes["updated_ids"] = counts.created_ids, counts.updated_ids
    record(action="import", obj=job, actor=job.created_by, agency=job.agency, changes=changes)


def _reset(job: ImportJob) -> None:
    ImportRowError.objects.filter(job=job).delete()
    job.total_rows = job.processed_rows = job.created = job.updated = job.unchanged = job.failed_rows = 0


def run_job(job_id: Any) -> ImportJob:
    """Run (or resume after a dead worker) one job; a finished job is left as it is."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update(of=("self",)).select_related("agency", "created_by").get(pk=job_id)
        if job.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED):
            return job
        now = timezone.now()
        if job.status == ImportStatus.RUNNING and job.heartbeat_at and now - job.heartbeat_at < HEARTBEAT_STALE:
            return job  # another worker is on it
        job.status, job.started_at, job.heartbeat_at = ImportStatus.RUNNING, job.started_at or now, now
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
            counts = importer.run(write=True, errors=True)
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
    """Set on `target` the values that differ from what it holds; the names of those fields."""
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
