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
Progress: a first pass counts the file's rows (and refuses one over IMPORT_MAX_ROWS) and stores them as
`total_rows` before anything is written; `processed_rows` grows with each committed batch.
Ending: every run ends the job `succeeded`, `failed` (with a message, whatever went wrong: a bad file, a
broken row reader, a lost database) or `cancelled` (a cancel request, seen after each batch); never
`running`. A job that stopped early reports what it committed: a partial job its batches, an atomic job
nothing (its rows counted unchanged, its bad rows failed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from rest_framework import serializers

from audit.services import record
from core import context
from core.bulk import CREATED, UNCHANGED, UPDATED, Upsert, by_key
from core.rules import StateConflict
from entities.bulk import ENTITY_KEY
from entities.models import Entity, EntityType, Link
from entities.services import entities_create, entities_upsert, links_upsert
from shipments.models import Shipment
from shipments.services import shipments_upsert

from . import ftm, ofac
from .kinds import KINDS, ImportOrganizationSerializer, ImportPersonSerializer, flatten, row_to_data, row_values
from .models import FINISHED, ImportCancelRequest, ImportJob, ImportKind, ImportMode, ImportRowError, ImportStatus
from .parties import Parties
from .readers import BadFile, Table, count_rows, open_table
from .rows import RowChecker
from .writing import WouldCreate, Writer

BATCH_SIZE = 5000
ROW = "__row__"  # a checked row's number in its file, while it waits in a batch
RAW = "__raw__"  # and its values as the file gave them, for its error rows should a bulk service refuse it
ERROR_MAX_CHARS = 2000  # of an unexpected exception's text kept as the job's error

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """A cancel request was seen after a batch: the run stops there (an atomic write pass rolls back)."""


LIST_FIELDS = ("names", "nationalities", "transit_countries", "phones", "emails", "addresses", "identifiers")


def heartbeat_stale() -> datetime.timedelta:
    """How old a running job's heartbeat may get before its worker counts as dead (read at call time)."""
    return datetime.timedelta(seconds=settings.IMPORT_HEARTBEAT_STALE_SECONDS)


def resume_stale() -> list[str]:
    """Re-enqueue the jobs no worker is on: RUNNING with a heartbeat older than IMPORT_HEARTBEAT_STALE_SECONDS
    (its worker died; the unacked message only comes back after the broker's visibility timeout) and QUEUED for
    longer than that (a lost message). Through the outbox, as `job_create` sends a job's run: with the broker away
    the runs wait for it in the database, none lost. Safe to repeat: the run leaves a finished job, or one with a
    live heartbeat, as it is. Returns the ids re-enqueued."""
    now = timezone.now()
    cutoff = now - heartbeat_stale()
    # A queued job's heartbeat is when it was last sent: one sent again is not sent again for as long.
    lost = (models.Q(status=ImportStatus.RUNNING) & (models.Q(heartbeat_at__lt=cutoff)
                                                       | models.Q(heartbeat_at__isnull=True))
            | models.Q(status=ImportStatus.QUEUED, created_at__lt=cutoff)
            & (models.Q(heartbeat_at__lt=cutoff) | models.Q(heartbeat_at__isnull=True)))
    with transaction.atomic():
        ids = [str(pk) for pk in ImportJob.objects.select_for_update(skip_locked=True).filter(lost)
               .order_by("created_at").values_list("pk", flat=True)]
        ImportJob.objects.filter(pk__in=ids, status=ImportStatus.QUEUED).update(heartbeat_at=now)
        for job_id in ids:
            _enqueue_run(job_id)
    return ids


def _enqueue_run(job_id: str) -> None:
    """The job's run, after the current transaction commits (through the outbox; one unsent row a job)."""
    from core import outbox

    outbox.enqueue("imports.run", kwargs={"job_id": job_id}, key=job_id)


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
        self.refused: list[ImportRowError] | None = None
        self.dry: WouldCreate | None = None
        self._checkers: dict[type, RowChecker] = {}
        self.total: int | None = None  # the file's rows, once counted
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
                serializer = self.kind.serializer_for(extra) if self.kind.serializer_for else self.kind.serializer
                values, problems = self.check(serializer, data)
                for name, messages in problems.items():
                    errors.setdefault(name, []).extend(messages)
            if errors or values is None:
                if errors_out is not None:
                    kept = row_values(row)
                    errors_out.extend(ImportRowError(job=self.job, row=number, field=name, message=message,
                                                     values=kept)
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
            values[RAW] = row
            yield number, values

    def count(self, tick: Callable[[], None] | None = None) -> int:
        """The first pass: the rows the run will count (data rows; an FtM file's lines), or BadFile when the
        file is not what an import takes or has more than IMPORT_MAX_ROWS rows. Nothing is written."""
        with self.job.file.open("rb") as binary:
            if self.job.kind == ImportKind.FTM:
                ftm.check_file(binary)
                self.total = ftm.count_lines(binary, settings.IMPORT_MAX_ROWS)
            elif self.job.kind == ImportKind.OFAC_SDN:
                self.total = ofac.count(binary, tick=tick)
            else:
                table = open_table(binary)
                self._check_columns(table)
                self.total = count_rows(table, tick=tick)
        return self.total

    def list_entries(self, *, delist: bool = True) -> None:
        """After a list import (an `ofac_sdn` file; an `ftm` file whose entities carry topics): the list's watchlist
        and entries, and, when it ran to its end (`delist`), the delisting of what the file no longer lists
        (`watchlists.services.watchlist_import`). A list without a source has no name to be kept under."""
        from watchlists.services import watchlist_import

        if self.job.kind not in (ImportKind.OFAC_SDN, ImportKind.FTM) or not self.job.source:
            return
        with self.job.file.open("rb") as binary:
            entries = (ofac.listed if self.job.kind == ImportKind.OFAC_SDN else ftm.listed)(binary)
        watchlist_import(job=self.job, entries=entries, delist=delist)

    def _listed(self, batch: list[dict[str, Any]]) -> dict[Any, Entity] | None:
        """The rows of a list import that carry topics are its entries: each record's `lists` gains the list (the
        job's source), written with the rest of the row. Returns the batch's stored records it read (for the bulk
        service, which then reads nothing), or None when the batch lists nothing."""
        source = self.job.source
        if self.job.kind not in (ImportKind.OFAC_SDN, ImportKind.FTM) or not source or \
                not any(values.get("topics") for values in batch):
            return None
        keys = {(values["source"], values["source_id"]) for values in batch}
        existing = {(e.source, e.source_id): e for e in by_key(Entity, self.job.agency_id, keys, ENTITY_KEY)}
        for values in batch:
            if values.get("topics"):
                stored = existing.get((values["source"], values["source_id"]))
                lists = list(stored.lists) if stored is not None else []
                values["lists"] = lists if source in lists else [*lists, source]
        return existing

    def cancel_requested(self) -> bool:
        return ImportCancelRequest.objects.filter(job_id=self.job.pk).exists()

    def run(self, *, write: bool, errors: bool, resume: Counts | None = None) -> Counts:
        if self.job.kind == "ftm":
            return self.run_ftm(write=write, errors=errors)
        counts = resume or Counts()
        self.parties = Parties(self.job)  # a dry pass's unsaved organisations must not leak into a writing one
        self.would_create = {}
        with self.job.file.open("rb") as binary, Writer() as self.writer, self._dry(write):
            table = ofac.table(binary) if self.job.kind == ImportKind.OFAC_SDN else open_table(binary)
            self._check_columns(table)
            pending: list[ImportRowError] = []
            self.refused = pending  # where _flush reports the rows a bulk service refused
            batch: list[dict[str, Any]] = []
            for number, values in self.checked_rows(table, pending if errors else None, skip=counts.total):
                counts.total += 1
                if values is None:
                    counts.failed += 1
                else:
                    values[ROW] = number
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
        if (self.total is None or at.total < self.total) and self.cancel_requested():
            raise Cancelled  # after this batch (the writer commits it before the run lets go)

    # --- FollowTheMoney ------------------------------------------------------------------------

    def run_ftm(self, *, write: bool, errors: bool) -> Counts:
        counts = Counts()
        self.would_create = {}
        pending: list[ImportRowError] = []
        self.refused = pending if errors else None  # the lines a bulk service refuses are bad lines too

        def bad(number: int, problems: dict[str, list[str]], item: dict[str, Any] | None) -> None:
            counts.failed += 1
            if errors:
                kept = row_values(item) if item is not None else {}
                pending.extend(ImportRowError(job=self.job, row=number, field=name, message=message, values=kept)
                               for name, messages in problems.items() for message in messages)

        # In line: the links of the second pass must find the entities the first pass wrote.
        with self.job.file.open("rb") as binary, Writer(threaded=False) as self.writer, self._dry(write):
            ftm.check_file(binary)
            known, identifiers = ftm.addresses(binary), ftm.identifications(binary)
            batch: list[dict[str, Any]] = []
            link_rows = 0
            for number, item, problem in ftm.lines(binary):
                counts.total += 1
                role, reason = ftm.classify(item) if item is not None else (ftm.SKIPPED, problem)
                if item is None:
                    bad(number, {"": [problem]}, None)
                elif role in (ftm.ADDRESS, ftm.IDENTIFICATION):
                    counts.unchanged += 1  # folded into the entities that name it
                elif role == ftm.LINK:
                    link_rows += 1  # counted in the second pass
                    counts.total -= 1
                elif role in (ftm.PERSON, ftm.ORGANIZATION):
                    person = role == ftm.PERSON
                    serializer_class = ImportPersonSerializer if person else ImportOrganizationSerializer
                    values, problems = self.check(serializer_class, ftm.entity_row(item, known, identifiers))
                    if values is None:
                        bad(number, problems, item)
                    else:
                        values["source"] = self.job.source
                        values["__type__"] = EntityType.PERSON if person else EntityType.ORGANIZATION
                        values[RAW] = item
                        values[ROW] = number
                        batch.append(values)
                else:
                    bad(number, {"schema": [reason]}, item)
                if len(batch) >= BATCH_SIZE:
                    self._commit(counts, pending, self._flush(batch, counts, write))
                    batch = []
            self._commit(counts, pending, self._flush(batch, counts, write))
            if link_rows:
                links: list[tuple[int, dict[str, Any]]] = []
                for number, item, _ in ftm.lines(binary):
                    if item is not None and ftm.classify(item)[0] == ftm.LINK:
                        links.append((number, item))
                        if len(links) >= BATCH_SIZE:
                            self._commit(counts, pending, self._flush_links(links, counts, write, bad))
                            links = []
                self._commit(counts, pending, self._flush_links(links, counts, write, bad))
        return counts

    def _flush_links(self, links: list[tuple[int, dict[str, Any]]], counts: Counts, write: bool,
                     bad: Callable[[int, dict[str, list[str]], dict[str, Any] | None], None]
                     ) -> Callable[[], None] | None:
        """Checks a batch of FtM link lines, counts them and returns their writing (entities.bulk.links_upsert)."""
        if not links:
            return None
        source = self.job.source
        wanted = {end for _, item in links for end in ftm.link_ends(item)}
        ends: dict[str, Any] = {e.source_id: e for e in Entity.objects.filter(
            agency_id=self.job.agency_id, source=source, source_id__in=wanted - {""})}
        for (src, source_id), entity in self.would_create.items():
            if src == source and source_id in wanted:
                ends.setdefault(source_id, entity)
        rows = []
        for number, item in links:
            counts.total += 1
            values, problems = ftm.link_values(item, ends)
            if values is None:
                bad(number, problems, item)
                continue
            rows.append({"provenance_source": source, **values})
        result = links_upsert(agency=self.job.agency, actor=self.job.created_by, rows=rows, defer=True)
        self._count(result, counts)
        if not write:
            return None
        result.prepare()
        return result.write

    @staticmethod
    def _count(result: Upsert, counts: Counts) -> None:
        counts.created += result.count(CREATED)
        counts.updated += result.count(UPDATED)
        counts.unchanged += result.count(UNCHANGED)

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
        """Sorts a batch into new, changed, unchanged and refused records by the app's bulk service (reading
        only) and counts them; returns the service's writing of the new and changed ones (with their audit
        events), or None when there is none to do. A row the service refuses (a rule of the record it names)
        is a bad row, reported in `self.refused` under its number."""
        if not batch:
            return None
        numbers = [values.pop(ROW, 0) for values in batch]
        raws = [values.pop(RAW, None) for values in batch]
        agency, actor = self.job.agency, self.job.created_by
        model: Any = self.kind.model
        label, key_name = self.kind.key
        keys = {(v[label], v[key_name]) for v in batch}
        self.writer.before_reading(keys)
        parties = None
        if model is Shipment:
            parties = entities_create(agency=agency, actor=actor, entities=self.parties.resolve(batch), defer=True)
            result = shipments_upsert(agency=agency, actor=actor, rows=batch, defer=True)
        elif model is Link:
            result = links_upsert(agency=agency, actor=actor, rows=batch, defer=True)
        else:
            for values in batch:
                if "__type__" in values:  # an FtM entity's
                    values["type"] = values.pop("__type__")
            result = entities_upsert(agency=agency, actor=actor, rows=batch, entity_type=self.kind.entity_type,
                                     existing=self._listed(batch), defer=True)
        for index, problems in result.problems.items():
            counts.failed += 1
            if self.refused is not None:
                kept = row_values(raws[index]) if raws[index] is not None else {}
                self.refused.extend(ImportRowError(job=self.job, row=numbers[index], field=name, message=message,
                                                   values=kept)
                                    for name, messages in problems.items() for message in messages)
        if not write:
            self._count_dry(batch, result, counts)
            if self.job.kind == "ftm":
                self.would_create.update(result.new)  # links of a dry run end at these
            return None
        self._count(result, counts)
        self.writer.in_flight(keys)
        result.prepare()  # here, while the writer thread writes the batch before

        def write_batch() -> None:
            if parties is not None:
                parties.write()
            result.write()

        if parties is not None:
            parties.prepare()
        return write_batch

    def _count_dry(self, batch: list[dict[str, Any]], result: Upsert, counts: Counts) -> None:
        """A dry run writes nothing, so it remembers what its earlier batches would have created: a row the
        service would create counts as updated or unchanged when an earlier batch met its key."""
        assert self.dry is not None
        label, key_name = self.kind.key
        earlier = self.dry.digests(set(result.new))
        would_create: dict[tuple[str, str], str] = {}
        for values, outcome in zip(batch, result.outcomes, strict=True):
            key = (values[label], values[key_name])
            if key in result.new:
                digest = would_create[key] = content_key({k: v for k, v in values.items() if k != "type"})
                if outcome == CREATED and key in earlier:
                    counts.unchanged += earlier[key] == digest
                    counts.updated += earlier[key] != digest
                    continue
            counts.created += outcome == CREATED
            counts.updated += outcome == UPDATED
            counts.unchanged += outcome == UNCHANGED
        self.dry.remember(would_create)


def sha256_of(job: ImportJob) -> str:
    digest = hashlib.sha256()
    with job.file.open("rb") as binary:
        for chunk in iter(lambda: binary.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _finish(job: ImportJob, counts: Counts | None, *, status: str, error: str = "") -> None:
    """End the job with these counts (None: as they stand) and record its one `import` event. Once finished,
    `created + updated + unchanged + failed_rows == total_rows` (API.md): a job that ended early (failed,
    cancelled) accounts for the rows it processed, and its event keeps the rows its first pass counted in the
    file (`rows_in_file`)."""
    rows_in_file = job.total_rows
    if counts is not None:
        job.processed_rows = counts.total
        job.created, job.updated, job.unchanged, job.failed_rows = (counts.created, counts.updated,
                                                                    counts.unchanged, counts.failed)
    job.total_rows = job.created + job.updated + job.unchanged + job.failed_rows
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.save()
    changes: dict[str, Any] = {"sha256": job.sha256, "kind": job.kind, "mode": job.mode, "source": job.source,
                               "status": status, "total_rows": job.total_rows, "created": job.created,
                               "updated": job.updated, "unchanged": job.unchanged, "failed_rows": job.failed_rows}
    if rows_in_file != job.total_rows:
        changes["rows_in_file"] = rows_in_file
    if status != ImportStatus.SUCCEEDED:
        changes["processed_rows"] = job.processed_rows
    if error:
        changes["error"] = error
    if status == ImportStatus.CANCELLED:
        request = ImportCancelRequest.objects.select_related("requested_by").filter(job_id=job.pk).first()
        if request is not None and request.requested_by is not None:
            changes["cancelled_by"] = request.requested_by.username
    record(action="import", obj=job, actor=job.created_by, agency=job.agency, changes=summary_changes(changes))


def summary_changes(values: dict[str, Any]) -> dict[str, list[Any]]:
    """A job's `import` event's changes, {field: [old, new]} as every event's: what the run set (the job was
    running)."""
    return {name: ["running" if name == "status" else None, value] for name, value in values.items()}


def _committed(job: ImportJob) -> Counts:
    """The counts of what a job that stopped early committed, read back from its row: a partial job's batches
    stand; a dry run counted what it checked (it writes nothing by design); an atomic job's one transaction did
    not commit, so none of its rows was created or updated: those its check pass passed count unchanged."""
    job.refresh_from_db(fields=["processed_rows", "created", "updated", "unchanged", "failed_rows"])
    counts = Counts.of(job)
    if job.mode == ImportMode.ATOMIC:
        counts = _rolled_back(counts)
    return counts


def _rolled_back(counts: Counts) -> Counts:
    return Counts(counts.total, 0, 0, counts.total - counts.failed, counts.failed)


def _stopped_by(exc: BaseException) -> str:
    """The job's error for an exception no reader turned into a BadFile."""
    name = type(exc).__name__
    if name in ("SoftTimeLimitExceeded", "TimeLimitExceeded"):
        return "The import ran past its time limit and was stopped."
    return f"The import stopped on an unexpected error ({name}: {exc})."[:ERROR_MAX_CHARS]


def _reset(job: ImportJob) -> None:
    ImportRowError.objects.filter(job=job).delete()
    job.total_rows = job.processed_rows = job.created = job.updated = job.unchanged = job.failed_rows = 0


def run_job(job_id: Any) -> ImportJob:
    """Run (or resume after a dead worker) one job; a finished job is left as it is. Every audit event
    of the run carries the job's id as their request id."""
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
        if job.status in FINISHED:
            return job
        now = timezone.now()
        if job.status == ImportStatus.RUNNING and job.heartbeat_at and now - job.heartbeat_at < heartbeat_stale():
            return job  # another worker is on it
        if ImportCancelRequest.objects.filter(job_id=job.pk).exists():  # asked to stop while no worker was on it
            _finish(job, _committed(job), status=ImportStatus.CANCELLED)
            return job
        # A partial job's committed batches stand (with their counts and bad rows): it carries on after them.
        # The other modes start over: their writes, if any, were all in one transaction that died too.
        resume = (Counts.of(job) if job.status == ImportStatus.RUNNING and job.mode == ImportMode.PARTIAL
                  and job.kind != ImportKind.FTM else None)
        job.status, job.started_at, job.heartbeat_at = ImportStatus.RUNNING, job.started_at or now, now
        job.source = default_source(job.kind, job.source)
        if resume is None:
            _reset(job)
        job.save()
    if job.kind not in KINDS:
        _finish(job, None, status=ImportStatus.FAILED, error=f"Imports of kind {job.kind!r} are not supported yet.")
        return job
    importer: Importer | None = None
    try:
        importer = Importer(job)
        if not job.sha256:
            job.sha256 = sha256_of(job)
            ImportJob.objects.filter(pk=job.pk).update(sha256=job.sha256)

        def beat() -> None:
            ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())

        if resume is not None and job.total_rows:  # counted by the run that died: the file has not changed
            importer.total = job.total_rows
        else:
            job.total_rows = importer.count(tick=beat)
            ImportJob.objects.filter(pk=job.pk).update(total_rows=job.total_rows, heartbeat_at=timezone.now())
        if job.mode == ImportMode.PARTIAL:
            counts = importer.run(write=True, errors=True, resume=resume)
            importer.list_entries()
        else:
            counts = importer.run(write=False, errors=True)
            if job.mode == ImportMode.ATOMIC:
                if counts.failed:
                    _finish(job, _rolled_back(counts), status=ImportStatus.FAILED,
                            error=f"{counts.failed} bad row(s): an atomic import writes nothing.")
                    return job
                with transaction.atomic():
                    counts = importer.run(write=True, errors=False)
                    importer.list_entries()
    except Exception as exc:  # whatever it is, the job ends here: never `running` for a later delivery to crash on
        if isinstance(exc, Cancelled):
            status, error = ImportStatus.CANCELLED, ""
        elif isinstance(exc, BadFile):
            status, error = ImportStatus.FAILED, str(exc)
        else:
            logger.exception("import job %s stopped on an unexpected error", job.pk)
            status, error = ImportStatus.FAILED, _stopped_by(exc)
        if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
            connection.close()  # a connection the error broke: _finish opens a new one
        committed = _committed(job)
        if importer is not None and job.mode == ImportMode.PARTIAL and isinstance(exc, Cancelled | BadFile) \
                and committed.created + committed.updated:
            try:  # a partial job's batches wrote records that carry the list: so do its entries (nothing delisted)
                importer.list_entries(delist=False)
            except Exception:
                logger.exception("import job %s: its watchlist entries were not kept", job.pk)
        _finish(job, committed, status=status, error=error)
        return job
    _finish(job, counts, status=ImportStatus.SUCCEEDED)
    return job


def job_cancel(*, job: ImportJob, actor: Any) -> ImportJob:
    """Cancel an import job (API.md § Bulk import). A queued job ends `cancelled` at once; a running one is asked
    to stop after its current batch, and its worker ends it `cancelled` (its committed batches stand). Never
    waits for a lock the running job holds. A finished job: StateConflict (409)."""
    if job.status in FINISHED:
        raise StateConflict(f"The import job has {job.status}: there is nothing to cancel.")
    # A row of its own, which no transaction of the running job holds (see ImportCancelRequest).
    ImportCancelRequest.objects.get_or_create(job_id=job.pk, defaults={"requested_by": actor})
    with transaction.atomic():
        # Rows not queued by their last committed state are not locked here: a running job's row is never waited on.
        queued = (ImportJob.objects.select_related("agency", "created_by").select_for_update(of=("self",))
                  .filter(pk=job.pk, status=ImportStatus.QUEUED).first())
        if queued is not None:
            _finish(queued, None, status=ImportStatus.CANCELLED)
            return queued
    job.refresh_from_db()
    if job.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED):  # it finished meanwhile
        ImportCancelRequest.objects.filter(job_id=job.pk).delete()
        raise StateConflict(f"The import job has {job.status}: there is nothing to cancel.")
    return job


def default_source(kind: str, source: str) -> str:
    """The job's source: an SDN list's names the list, `ofac-sdn` unless given."""
    return source or (ofac.DEFAULT_SOURCE if kind == ImportKind.OFAC_SDN else "")


def job_create(*, agency: Any, actor: Any, upload: Any, kind: str, mode: str = ImportMode.PARTIAL, source: str = "",
               run: bool = True) -> ImportJob:
    """A new queued job for the uploaded file (a Django File), and its `imports.run` in the outbox, in one
    transaction: the job is never made without its run, and a broker that is away does not fail it (the run is
    sent when the broker returns). `run=False` for a caller that runs the job itself."""
    from pathlib import PurePath

    with transaction.atomic():
        job = ImportJob(agency=agency, kind=kind, mode=mode, source=default_source(kind, source), created_by=actor)
        job.file.save(PurePath(upload.name or "upload").name, upload, save=False)
        job.save()
        if run:
            _enqueue_run(str(job.pk))
    return job
