"""Import jobs that must always end (API.md § Bulk import): hostile files fail with a clear error, an XLSX is
capped by its inflated size and its rows, errors.csv is safe to open in a spreadsheet, a rolled-back job
reports what it committed, progress is a fraction while a job runs, and a job can be cancelled."""

from __future__ import annotations

import csv
import datetime
import io
import json
import struct
import threading
import time
import tracemalloc
import zipfile

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from entities.models import Entity
from imports.models import ImportJob, ImportRowError
from imports.services import Importer, run_job
from imports.tasks import resume_stale

from . import factories
from .test_imports import BAD, GOOD, PERSON_COLUMNS, accounted, job_for, persons_csv, xlsx

pytestmark = pytest.mark.django_db


# --- any failure ends the job ---------------------------------------------------------------------


def test_a_deeply_nested_json_line_is_a_bad_row_not_a_crash(world):
    deep = b"[" * 50_000
    ftm_file = json.dumps({"id": "p1", "schema": "Person", "properties": {"name": ["Zhang Wei"]}}).encode()
    job = run_job(job_for(world.a, ftm_file + b"\n" + deep + b"\n", kind="ftm").pk)
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.created, job.failed_rows) == (2, 1, 1) and accounted(job)
    assert "nested too deeply" in ImportRowError.objects.get(job=job, row=2).message

    lines = json.dumps({"source_id": "p1", "name": "Zhang Wei"}).encode() + b"\n" + deep + b"\n"
    job = run_job(job_for(world.a, lines, source="jsonl").pk)
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.created, job.failed_rows) == (2, 1, 1) and accounted(job)
    assert "nested too deeply" in ImportRowError.objects.get(job=job, row=2).message

    job = run_job(job_for(world.a, deep, source="array").pk)  # a JSON array is the whole file: a bad file
    assert job.status == "failed" and "nested too deeply" in job.error


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf \r\n\r\n", b"\xef\xbb\xbf\xef\xbb\xbf"])
def test_a_csv_of_only_a_bom_fails_as_an_empty_file(world, content):
    job = run_job(job_for(world.a, content).pk)
    assert job.status == "failed", job.status
    assert "empty" in job.error or "header" in job.error, job.error
    assert job.finished_at is not None and not Entity.objects.exists()


def test_any_exception_ends_the_job_failed_with_a_message_and_it_is_not_resumed(world, monkeypatch):
    def boom(self, *args, **kwargs):
        raise ZeroDivisionError("the checker broke")

    monkeypatch.setattr(Importer, "check", boom)
    job = run_job(job_for(world.a, persons_csv(GOOD)).pk)
    assert job.status == "failed"
    assert "ZeroDivisionError" in job.error and "the checker broke" in job.error
    assert job.finished_at is not None
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - datetime.timedelta(days=1))
    assert str(job.pk) not in resume_stale()
    event = AuditEvent.objects.get(action="import", object_id=str(job.pk))
    assert event.changes["status"] == ["running", "failed"] and "ZeroDivisionError" in event.changes["error"][1]


def test_a_partial_job_that_breaks_mid_way_keeps_and_reports_its_committed_batches(world, monkeypatch):
    monkeypatch.setattr("imports.services.BATCH_SIZE", 2)
    original = Importer.check
    calls = {"n": 0}

    def breaks_on_the_fifth_row(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("lost")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Importer, "check", breaks_on_the_fifth_row)
    rows = [{"source_id": f"m{i}", "name": f"Name {i}"} for i in range(8)]
    job = run_job(job_for(world.a, persons_csv(rows)).pk)
    assert job.status == "failed" and "RuntimeError" in job.error
    assert job.total_rows == 4 and job.processed_rows == 4  # once finished, the counts account for total_rows
    event = AuditEvent.objects.get(action="import", object_id=str(job.pk))
    assert event.changes["rows_in_file"] == [None, 8]
    assert (job.created, job.updated, job.unchanged, job.failed_rows) == (4, 0, 0, 0)
    assert Entity.objects.filter(agency=world.a).count() == 4


# --- XLSX limits --------------------------------------------------------------------------------


def _inflated_xlsx(payload: int) -> bytes:
    """A workbook of two rows whose one name cell holds `payload` bytes of one letter: tiny compressed."""
    book = xlsx(["source_id", "name"], [{"source_id": "x1", "name": "PLACEHOLDER"}])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(book)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data.replace(b"PLACEHOLDER", b"A" * payload))
    return out.getvalue()


def test_an_xlsx_that_inflates_past_the_limit_fails_before_it_is_read(world):
    content = _inflated_xlsx(40 * 1024 * 1024)
    assert len(content) < 200_000
    tracemalloc.start()
    try:
        with override_settings(IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES=10 * 1024 * 1024):
            job = run_job(job_for(world.a, content, name="bomb.xlsx").pk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.status == "failed", (job.status, job.error)
    assert "uncompressed" in job.error and "10485760" in job.error, job.error
    assert peak < 8 * 1024 * 1024, peak  # never inflated (the memory says so; a clock would only add noise)
    assert not Entity.objects.exists() and job.created == 0


def _lie_about_sizes(content: bytes, member_part: bytes, size: int) -> bytes:
    """The zip with the central directory declaring `size` bytes for members whose name holds `member_part`."""
    data = bytearray(content)
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        name = bytes(data[at + 46:at + 46 + name_length])
        if member_part in name:
            struct.pack_into("<I", data, at + 24, size)
        at += 4
    return bytes(data)


def test_an_xlsx_whose_declared_sizes_lie_fails_with_a_clear_error(world):
    content = _lie_about_sizes(_inflated_xlsx(5 * 1024 * 1024), b"worksheets/sheet1", 100)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert sum(i.file_size for i in archive.infolist()) < 1024 * 1024
    with override_settings(IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES=1024 * 1024):
        job = run_job(job_for(world.a, content, name="liar.xlsx").pk)
    assert job.status == "failed", (job.status, job.error)
    assert "XLSX" in job.error, job.error
    assert not Entity.objects.exists()


SHARED_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _with_shared_strings(entries: int, part: str = "xl/sharedStrings.xml") -> bytes:
    """A workbook of GOOD's first row with a shared strings part of `entries` strings (the reader holds the
    part whole) at `part`, found as the reader finds it: by its content type."""
    book = xlsx(["source_id", "name"], [{"source_id": "s1", "name": "Zhang Wei"}])
    strings = (b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
               b'spreadsheetml/2006/main">' + b"".join(b"<si><t>%x</t></si>" % i for i in range(entries))
               + b"</sst>")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(book)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", f'<Override PartName="/{part}" '
                                    f'ContentType="{SHARED_STRINGS_TYPE}"/></Types>'.encode())
            dst.writestr(info.filename, data)
        dst.writestr(part, strings)
    return out.getvalue()


@pytest.mark.parametrize("part", ["xl/sharedStrings.xml", "xl/worksheets/strings.xml"])
def test_an_xlsx_whose_shared_strings_inflate_past_their_limit_fails(world, part):
    """The reader holds shared strings whole, at several times their size: they have a limit of their own,
    wherever the file puts them."""
    content = _with_shared_strings(20_000, part)
    with override_settings(IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES=256 * 1024):
        job = run_job(job_for(world.a, content, name="strings.xlsx").pk)
        assert job.status == "failed" and "IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES" in job.error, job.error
    assert not Entity.objects.exists()
    with override_settings(IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES=1024 * 1024):
        job = run_job(job_for(world.a, content, name="strings.xlsx").pk)
        assert job.status == "succeeded" and job.created == 1, job.error


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_file_over_the_row_limit_fails_and_writes_nothing(world, fmt):
    rows = [{"source_id": f"r{i}", "name": f"Name {i}"} for i in range(5)]
    content = persons_csv(rows) if fmt == "csv" else xlsx(PERSON_COLUMNS, rows)
    with override_settings(IMPORT_MAX_ROWS=4):
        job = run_job(job_for(world.a, content, name=f"f.{fmt}").pk)
    assert job.status == "failed" and "4 rows" in job.error, job.error
    assert not Entity.objects.exists() and job.created == 0
    with override_settings(IMPORT_MAX_ROWS=5):
        assert run_job(job_for(world.a, content, name=f"f.{fmt}").pk).status == "succeeded"


# --- errors.csv ---------------------------------------------------------------------------------


def test_errors_csv_escapes_cells_a_spreadsheet_would_run(world, investigator, client_for):
    job = run_job(job_for(world.a, persons_csv(GOOD), user=investigator).pk)
    hostile = ["=2+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain"]
    ImportRowError.objects.bulk_create(ImportRowError(job=job, row=n, field=text, message=text)
                                       for n, text in enumerate(hostile, start=1))
    api = client_for(investigator)
    for url in (f"/api/v1/imports/{job.pk}/errors/?format=csv", f"/api/v1/imports/{job.pk}/errors.csv/"):
        response = api.get(url)
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(response.getvalue().decode())))[1:]
        expected = ["'=2+2", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "plain"]
        assert [r[1] for r in rows] == expected and [r[2] for r in rows] == expected
        assert [r[0] for r in rows] == [str(n) for n in range(1, 8)]


# --- counts of a job that wrote nothing -----------------------------------------------------------


def test_a_rolled_back_atomic_job_reports_nothing_created(world):
    job = run_job(job_for(world.a, persons_csv(GOOD + BAD[:1]), mode="atomic").pk)
    assert job.status == "failed" and not Entity.objects.exists()
    assert (job.total_rows, job.created, job.updated, job.failed_rows) == (4, 0, 0, 1)
    assert accounted(job) and job.processed_rows == 4
    event = AuditEvent.objects.get(action="import", object_id=str(job.pk))
    assert (event.changes["created"][1], event.changes["updated"][1]) == (0, 0)


def test_an_atomic_job_that_breaks_in_its_write_pass_reports_nothing_created(world, monkeypatch):
    import imports.services

    original = imports.services.Importer._flush

    def breaks_when_writing(self, batch, counts, write):
        if write:
            raise RuntimeError("disk full")
        return original(self, batch, counts, write)

    monkeypatch.setattr(imports.services.Importer, "_flush", breaks_when_writing)
    job = run_job(job_for(world.a, persons_csv(GOOD), mode="atomic").pk)
    assert job.status == "failed" and "disk full" in job.error
    assert (job.total_rows, job.created, job.updated, job.failed_rows) == (3, 0, 0, 0) and accounted(job)
    assert not Entity.objects.exists()


# --- progress -----------------------------------------------------------------------------------


def _from_another_connection(job_id) -> tuple[int, int, str]:
    seen: list[tuple[int, int, str]] = []

    def read() -> None:
        try:
            seen.append(ImportJob.objects.values_list("processed_rows", "total_rows", "status").get(pk=job_id))
        finally:
            connection.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["persons", "ftm"])
def test_total_rows_is_known_while_the_job_runs(world, monkeypatch, kind):
    monkeypatch.setattr("imports.services.BATCH_SIZE", 2)
    original = Importer._commit
    seen: list[tuple[int, int, str]] = []

    def commit_then_look(self, counts, pending, write):
        original(self, counts, pending, write)
        self.writer.wait()
        seen.append(_from_another_connection(self.job.pk))

    monkeypatch.setattr(Importer, "_commit", commit_then_look)
    if kind == "ftm":
        content = "\n".join(json.dumps({"id": f"p{i}", "schema": "Person", "properties": {"name": [f"N {i}"]}})
                            for i in range(6)).encode()
    else:
        content = persons_csv([{"source_id": f"g{i}", "name": f"Name {i}"} for i in range(6)])
    job = run_job(job_for(world.a, content, kind=kind).pk)
    assert job.status == "succeeded", job.error
    assert seen[0] == (2, 6, "running"), seen
    assert all(total == 6 for _, total, _ in seen)
    assert [processed for processed, _, _ in seen][:3] == [2, 4, 6]


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_a_queued_job(world, investigator, client_for):
    job = job_for(world.a, persons_csv(GOOD), user=investigator)
    api = client_for(investigator)
    response = api.post(f"/api/v1/imports/{job.pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"]
    assert run_job(job.pk).status == "cancelled"  # its queued message finds it cancelled
    assert not Entity.objects.exists()
    assert api.post(f"/api/v1/imports/{job.pk}/cancel/").status_code == 409
    event = AuditEvent.objects.get(action="import", object_id=str(job.pk))
    assert event.changes["status"] == ["running", "cancelled"] and event.actor == investigator.username


def test_cancel_answers_409_for_a_finished_job_403_without_the_role_404_for_another_agency(
        world, investigator, client_for):
    done = run_job(job_for(world.a, persons_csv(GOOD), user=investigator).pk)
    api = client_for(investigator)
    response = api.post(f"/api/v1/imports/{done.pk}/cancel/")
    assert response.status_code == 409, response.content
    assert ImportJob.objects.get(pk=done.pk).status == "succeeded"
    queued = job_for(world.a, persons_csv(GOOD), user=investigator)
    analyst = factories.user(world.a, "analyst", world.a1, username="ana-a1")
    assert client_for(analyst).get(f"/api/v1/imports/{queued.pk}/").status_code == 200
    assert client_for(analyst).post(f"/api/v1/imports/{queued.pk}/cancel/").status_code == 403
    other = factories.user(world.b, "investigator", world.b1, username="inv-b1")
    assert client_for(other).post(f"/api/v1/imports/{queued.pk}/cancel/").status_code == 404
    assert client_for(None).post(f"/api/v1/imports/{queued.pk}/cancel/").status_code == 401
    assert ImportJob.objects.get(pk=queued.pk).status == "queued"


def _cancel_from_another_connection(api, job_id) -> int:
    """The cancel request as another request would make it, on its own connection (never waiting for a lock
    the running job holds: the test would hang)."""
    answers: list[int] = []

    def post() -> None:
        try:
            answers.append(api.post(f"/api/v1/imports/{job_id}/cancel/").status_code)
        finally:
            connection.close()

    thread = threading.Thread(target=post)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the cancel request waited for the running job"
    return answers[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["partial", "atomic", "dry_run"])
def test_cancel_stops_a_running_job_after_its_current_batch(world, investigator, client_for, monkeypatch, mode):
    monkeypatch.setattr("imports.services.BATCH_SIZE", 2)
    api = client_for(investigator)
    original = Importer._commit
    answers: list[int] = []

    def cancel_during_the_second_batch(self, counts, pending, write):
        if counts.total == 4 and not answers:
            if mode == "atomic" and write is None:
                return original(self, counts, pending, write)  # its checking pass: cancel in the writing one
            answers.append(_cancel_from_another_connection(api, self.job.pk))
        original(self, counts, pending, write)

    monkeypatch.setattr(Importer, "_commit", cancel_during_the_second_batch)
    rows = [{"source_id": f"c{i}", "name": f"Name {i}"} for i in range(9)]
    rows += [{"source_id": "c9", "name": "Name 9"}] if mode == "atomic" else BAD[:1]  # atomic: a write pass
    job = run_job(job_for(world.a, persons_csv(rows), mode=mode, user=investigator).pk)
    assert answers == [202]
    assert job.status == "cancelled", (job.status, job.error)
    job.refresh_from_db()
    assert job.finished_at is not None and job.total_rows == job.processed_rows <= 10
    assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows
    if mode == "partial":  # its first two batches stand
        assert (job.processed_rows, job.created) == (4, 4)
        assert Entity.objects.filter(agency=world.a).count() == 4
    elif mode == "atomic":  # its one transaction is rolled back
        assert job.created == 0 and job.updated == 0
        assert not Entity.objects.exists()
    else:
        assert (job.processed_rows, job.created) == (4, 4) and not Entity.objects.exists()
    assert api.post(f"/api/v1/imports/{job.pk}/cancel/").status_code == 409
    assert run_job(job.pk).status == "cancelled"
    assert AuditEvent.objects.get(action="import", object_id=str(job.pk)).changes["status"] == ["running", "cancelled"]


def test_the_admin_cancels_a_queued_job_and_leaves_a_finished_one(world, client):
    clerk = factories.user(world.a, "investigator", world.a1, username="clerk-a1")
    clerk.is_staff = True
    clerk.save()
    client.force_login(clerk)
    queued = job_for(world.a, persons_csv(GOOD), user=clerk)
    done = run_job(job_for(world.a, persons_csv(GOOD), user=clerk).pk)
    theirs = job_for(world.b, persons_csv(GOOD))
    page = client.get("/admin/imports/importjob/")
    assert page.status_code == 200 and b'value="cancel"' in page.content
    response = client.post("/admin/imports/importjob/", {"action": "cancel", "_selected_action": [
        str(queued.pk), str(done.pk), str(theirs.pk)]}, follow=True)
    assert response.status_code == 200
    statuses = dict(ImportJob.objects.values_list("pk", "status"))
    assert (statuses[queued.pk], statuses[done.pk], statuses[theirs.pk]) == ("cancelled", "succeeded", "queued")
    assert b"nothing to cancel" in response.content


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_shows_progress_and_stops_on_cancel(world, investigator, client_for):
    """A job on a real worker process, read from this one: its total is known while it runs, and a cancel request
    stops it after the batch in hand, its committed batches kept and counted."""
    from imports.tasks import run

    from .worker import celery_worker

    rows = [{"source_id": f"w{i}", "name": f"Worker Name {i}"} for i in range(40_000)]
    job = job_for(world.a, persons_csv(rows), user=investigator, source="worker")
    api = client_for(investigator)
    seen: list[tuple[int, int, str]] = []
    with celery_worker() as queue:
        run.apply_async(args=(str(job.pk),), queue=queue)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = ImportJob.objects.values_list("processed_rows", "total_rows", "status").get(pk=job.pk)
            if now[2] != "queued":
                seen.append(now)
            if now[0] > 0 or now[2] not in ("queued", "running"):
                break
            time.sleep(0.05)
        assert seen and seen[-1][2] == "running", seen
        processed, total, _ = seen[-1]
        assert total == 40_000 and 0 < processed < total, seen
        response = api.post(f"/api/v1/imports/{job.pk}/cancel/")
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "running" and response.json()["total_rows"] == 40_000
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status != "running":
                break
            time.sleep(0.2)
    assert job.status == "cancelled", (job.status, job.error)
    assert processed <= job.processed_rows < 40_000 and job.processed_rows % 5000 == 0
    assert job.created == job.processed_rows == job.total_rows
    assert Entity.objects.filter(source="worker").count() == job.created


@pytest.mark.parametrize("depth", [500, 900, 990])
def test_a_value_nested_near_the_parsers_limit_is_a_bad_row(world, depth):
    """Nesting a JSON parser still reads, but deep enough that checking the row could exhaust the stack."""
    deep = "[" * depth + "]" * depth
    lines = [json.dumps({"source_id": "ok", "name": "Zhang Wei"}),
             '{"source_id": "d1", "name": "Deep", "names": ' + deep + "}",
             '{"source_id": "d2", "name": ' + deep + "}"]
    job = run_job(job_for(world.a, "\n".join(lines).encode(), source="deep").pk)
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.created, job.failed_rows) == (3, 1, 2) and accounted(job)
