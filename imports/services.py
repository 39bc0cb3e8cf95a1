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

import contextlib
import dataclasses
import datetime
import hashlib
import json
from collections.abc import Callable, Iterator
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
from entities.models import Entity, EntityType, Link, OrganizationKind
from shipments.models import Shipment

from . import ftm
from .kinds import KINDS, ImportOrganizationSerializer, ImportPersonSerializer, flatten, row_to_data
from .models import ImportJob, ImportKind, ImportMode, ImportRowError, ImportStatus
from .parties import Parties
from .readers import BadFile, Table, _check_text, open_table
from .rows import RowChecker
from .writing import WouldCreate, Writer, apply_changes, bulk_update, by_source_id

BATCH_SIZE = 5000
LIST_FIELDS = ("names", "nationalities", "transit_countries", "phones", "emails", "addresses", "identifiers")


def heartbeat_stale() -> datetime.timedelta:
    """How old a running job's heartbeat may get before its worker counts as dead (read at call time)."""
    return datetime.timedelta(seconds=settings.IMPORT_HEARTBEAT_STALE_SECONDS)


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
        self.kind = KINDS[job.kind]()
        self.parties = Parties(job)
        self.would_create: dict[tuple[str, str], Any] = {}
        self.dry: WouldCreate | None = None
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
        self.would_create = {}
        with self.job.file.open("rb") as binary, Writer() as self.writer, self._dry(write):
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

    @contextlib.contextmanager
    def _dry(self, write: bool) -> Iterator[None]:
        """For a pass that writes nothing, where to remember what it would have created."""
        if write:
            yield
            return
        self.dry = WouldCreate()
        try:
            yield
        finally:
            self.dry.close()
            self.dry = None

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
        self.would_create = {}
        pending: list[ImportRowError] = []

        def bad(number: int, problems: dict[str, list[str]]) -> None:
            counts.failed += 1
            if errors:
                pending.extend(ImportRowError(job=self.job, row=number, field=name, message=message)
                               for name, messages in problems.items() for message in messages)

        # In line: the links of the second pass must find the entities the first pass wrote.
        with self.job.file.open("rb") as binary, Writer(threaded=False) as self.writer, self._dry(write):
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
                    serializer_class = ImportPersonSerializer if person else ImportOrganizationSerializer
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
            _compare(target, values, counts, fields, changed, stored=values["provenance_id"] in existing)
        if not write:
            return None

        events = self._events(list(new.values()), list(changed.values()))

        def write_links() -> None:
            copy_insert(Link, new.values())
            if changed:
                bulk_update(Link, [obj for obj, _ in changed.values()], sorted(fields))
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
                    for obj in by_source_id(model, agency_id, keys, self.kind.key)}
        new: dict[tuple[str, str], Any] = {}
        changed: dict[Any, tuple[Any, dict[str, Any]]] = {}
        update_fields: set[str] = set()
        now = timezone.now()
        would_create: dict[tuple[str, str], str] = {}
        earlier = self.dry.digests(keys - existing.keys()) if self.dry is not None else {}
        for values in batch:
            entity_type = values.pop("__type__", None) or self.kind.entity_type
            key = (values[label], values[key_name])
            target = existing.get(key) or new.get(key)  # the same source_id twice in a batch: the later row wins
            if target is None and not write:
                # A dry run writes nothing, so it remembers what its earlier batches would have created.
                digest = would_create[key] = content_key(values)
                if key in earlier:
                    counts.unchanged += earlier[key] == digest
                    counts.updated += earlier[key] != digest
                    continue
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
            _compare(target, values, counts, update_fields, changed, stored=key in existing)
        if not write:
            if self.dry is not None:
                self.dry.remember(would_create)
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
                bulk_update(model, [obj for obj, _ in changed.values()], [*sorted(update_fields), *derived])
            record_many(events)

        return write_batch


def _compare(target: Any, values: dict[str, Any], counts: Counts, fields: set[str],
             changed: dict[Any, tuple[Any, dict[str, Any]]], *, stored: bool) -> None:
    """A row naming a record already met: count it unchanged, or apply it and count it updated. A stored
    record that changed is kept, with its snapshot from before, to be written and audited; a record this
    batch creates is simply written with its new values."""
    before = snapshot(target, related=False) if stored else None
    diffs = apply_changes(target, values)
    if not diffs:
        counts.unchanged += 1
        return
    fields.update(diffs)
    counts.updated += 1
    if isinstance(target, Entity):
        target.refresh_derived()
    if before is not None:
        changed.setdefault(target.pk, (target, before))


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
        jobs = ImportJob.objects.select_related("agency", "created_by")
        job = jobs.select_for_update(of=("self",), skip_locked=True).filter(pk=job_id).first()
        if job is None:
            # Locked: a worker is inside the job's transaction (an atomic import's write pass, whose heartbeat
            # nobody else sees). Leave it to that worker rather than wait for it.
            return jobs.get(pk=job_id)
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
    if job.kind not in KINDS:
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




def job_create(*, agency: Any, actor: Any, upload: Any, kind: str, mode: str = ImportMode.PARTIAL, source: str = "",
               run: bool = True) -> ImportJob:
    """A new queued job for the uploaded file (a Django File), and its `imports.run` in the outbox, in one
    transaction: the job is never made without its run, and a broker that is away does not fail it (the run is
    sent when the broker returns). `run=False` for a caller that runs the job itself."""
    from pathlib import PurePath

    from core import outbox

    with transaction.atomic():
        job = ImportJob(agency=agency, kind=kind, mode=mode, source=source, created_by=actor)
        job.file.save(PurePath(upload.name or "upload").name, upload, save=False)
        job.save()
        if run:
            outbox.enqueue("imports.run", kwargs={"job_id": str(job.pk)}, key=str(job.pk))
    return job
