"""Bulk imports (API.md § Bulk import): accounting, modes, idempotence, formats, API and command."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from audit.models import AuditEvent
from audit.services import verify_chain
from entities.models import Entity
from imports.models import ImportJob, ImportRowError
from imports.services import run_job

from . import factories

pytestmark = pytest.mark.django_db

PERSON_COLUMNS = ["source_id", "name", "names", "birth_date", "nationalities", "phones", "emails", "identifiers",
                  "addresses", "address_country"]


def persons_csv(rows: list[dict], delimiter: str = ",", bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PERSON_COLUMNS, delimiter=delimiter)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


GOOD = [
    {"source_id": "p1", "name": "Zhang Wei", "names": "张伟;Wei Zhang", "birth_date": "1975-03-02",
     "nationalities": "CN", "phones": "+86 138 0013 8000", "emails": "zw@example.com",
     "identifiers": "passport:E12345678:CN", "addresses": "1 Harbour Rd, Hong Kong", "address_country": "HK"},
    {"source_id": "p2", "name": "Ivan Petrov", "nationalities": "RU;KZ"},
    {"source_id": "p3", "name": "Maria Lopez", "birth_date": "1980-12-31", "emails": "m.lopez@example.org"},
]
BAD = [
    {"source_id": "p4", "name": "", "birth_date": "not-a-date", "nationalities": "XX"},  # three bad fields
    {"source_id": "p5", "name": "Bad Mail", "emails": "not-an-email"},
]


def job_for(agency, content: bytes, kind: str = "persons", mode: str = "partial", source: str = "test",
            user=None, name: str = "file.csv") -> ImportJob:
    job = ImportJob(agency=agency, kind=kind, mode=mode, source=source, created_by=user)
    job.file.save(name, ContentFile(content), save=False)
    job.save()
    return job


def xlsx(columns: list[str], rows: list[dict]) -> bytes:
    """A workbook whose first sheet has the columns as its header row, then the rows."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(c, "") for c in columns])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def accounted(job: ImportJob) -> bool:
    return job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows


def test_partial_writes_good_rows_and_reports_every_bad_field(world, investigator):
    job = run_job(job_for(world.a, persons_csv(GOOD + BAD), user=investigator).pk)
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.created, job.failed_rows, job.processed_rows) == (5, 3, 2, 5)
    assert accounted(job)
    assert Entity.objects.filter(agency=world.a, source="test").count() == 3
    zhang = Entity.objects.get(source_id="p1")
    assert zhang.type == "person" and zhang.nationalities == ["CN"] and zhang.phones == ["+8613800138000"]
    assert zhang.identifiers[0]["number"] == "E12345678" and zhang.addresses[0]["country"] == "HK"
    assert "张伟" in zhang.names and zhang.search_text
    errors = {(e.row, e.field) for e in ImportRowError.objects.filter(job=job)}
    assert {(4, "name"), (4, "birth_date"), (4, "nationalities[0]")} <= errors or \
        {(4, "name"), (4, "birth_date")} <= errors
    assert any(row == 4 and field.startswith("nationalities") for row, field in errors)
    assert any(row == 5 and field.startswith("emails") for row, field in errors)
    event = AuditEvent.objects.get(action="import", object_id=str(job.pk))
    assert event.changes["sha256"] == [None, job.sha256] and len(job.sha256) == 64
    assert event.changes["created"] == [None, 3] and event.actor == investigator.username
    # plus the usual create event of each record written, all under the job's id as their request id
    creates = AuditEvent.objects.filter(action="create", object_type="person", request_id=str(job.pk))  # as the API's
    assert sorted(e.object_id for e in creates) == sorted(
        str(pk) for pk in Entity.objects.filter(source="test").values_list("pk", flat=True))
    assert all(e.actor == investigator.username for e in creates)
    assert creates.get(object_id=str(zhang.pk)).changes["name"] == [None, "Zhang Wei"]
    assert verify_chain(str(world.a.pk)).ok


def test_reimport_changes_nothing_and_update_is_counted(world):
    content = persons_csv(GOOD + BAD)
    run_job(job_for(world.a, content).pk)
    again = run_job(job_for(world.a, content).pk)
    assert (again.created, again.updated, again.unchanged, again.failed_rows) == (0, 0, 3, 2)
    assert Entity.objects.filter(agency=world.a).count() == 3
    changed = [dict(GOOD[0], name="Zhang Wei Jr"), *GOOD[1:]]
    third = run_job(job_for(world.a, persons_csv(changed)).pk)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    entity = Entity.objects.get(source_id="p1")
    assert entity.name == "Zhang Wei Jr" and entity.version == 2 and "jr" in entity.search_text
    # the re-import wrote no event of its own but `import`; the update is audited field by field
    assert not AuditEvent.objects.filter(request_id=str(again.pk)).exclude(action="import").exists()
    update = AuditEvent.objects.get(request_id=str(third.pk), action="update")
    assert update.object_id == str(entity.pk) and update.changes["name"] == ["Zhang Wei", "Zhang Wei Jr"]
    assert verify_chain(str(world.a.pk)).ok


def test_atomic_writes_nothing_on_one_bad_row(world):
    job = run_job(job_for(world.a, persons_csv(GOOD + BAD[:1]), mode="atomic").pk)
    assert job.status == "failed" and "atomic" in job.error
    assert accounted(job) and job.failed_rows == 1
    assert not Entity.objects.exists()
    assert ImportRowError.objects.filter(job=job, row=4).exists()
    good = run_job(job_for(world.a, persons_csv(GOOD), mode="atomic").pk)
    assert good.status == "succeeded" and good.created == 3 and Entity.objects.count() == 3


def test_dry_run_writes_nothing_but_checks_every_row(world):
    job = run_job(job_for(world.a, persons_csv(GOOD + BAD), mode="dry_run").pk)
    assert job.status == "succeeded" and accounted(job)
    assert (job.created, job.failed_rows) == (3, 2)
    assert not Entity.objects.exists()
    assert ImportRowError.objects.filter(job=job).values("row").distinct().count() == 2


def test_formats_semicolon_bom_json_jsonl_xlsx(world):
    rows = [{k: v for k, v in r.items() if v} for r in GOOD]
    as_json = json.dumps(rows).encode()
    as_lines = "\n".join(json.dumps(r) for r in rows).encode()
    as_xlsx = xlsx(PERSON_COLUMNS, GOOD)
    for i, content in enumerate([persons_csv(GOOD, ";", bom=True), as_json, as_lines, as_xlsx]):
        job = run_job(job_for(world.a, content, source=f"fmt{i}").pk)
        assert job.status == "succeeded", (i, job.error)
        assert (job.created, job.failed_rows) == (3, 0), i
    assert Entity.objects.filter(source="fmt3", source_id="p1", birth_date="1975-03-02").exists()


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00binary", "binary"),
    ("name,source_id\nJos\u00e9,1\n".encode("latin-1"), "UTF-8"),
    (b"fullname,colour\nA,red\n", "column"),
    (b"", "empty"),
])
def test_a_file_that_is_not_what_it_claims_fails_and_writes_nothing(world, content, message):
    job = run_job(job_for(world.a, content).pk)
    assert job.status == "failed" and message in job.error
    assert not Entity.objects.exists()
    assert AuditEvent.objects.filter(action="import", object_id=str(job.pk)).exists()


def test_bad_encoding_deep_in_the_file_writes_nothing(world, monkeypatch):
    monkeypatch.setattr("imports.services.BATCH_SIZE", 10)
    good = [{"source_id": f"x{i}", "name": f"Person {i}"} for i in range(50)]
    content = persons_csv(good) + "Jos\u00e9,x99\n".encode("latin-1")
    job = run_job(job_for(world.a, content).pk)
    assert job.status == "failed" and not Entity.objects.exists()


def test_organisations_and_batches(world, monkeypatch):
    monkeypatch.setattr("imports.services.BATCH_SIZE", 7)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["source_id", "name", "jurisdiction", "kind", "website"])
    for i in range(30):
        writer.writerow([f"o{i}", f"Org {i} Co., Ltd.", "HK", "trader" if i % 2 else "", ""])
    writer.writerow(["o30", "Bad Kind", "HK", "pirate", ""])
    writer.writerow(["o0", "Org 0 Co., Ltd.", "HK", "", ""])  # the same record again, later in the file
    job = run_job(job_for(world.a, out.getvalue().encode(), kind="organizations").pk)
    assert (job.total_rows, job.created, job.unchanged, job.failed_rows) == (32, 30, 1, 1)
    assert Entity.objects.filter(type="organization", kind="company").count() == 15


def test_a_dry_run_counts_a_source_id_met_again_in_a_later_batch_as_the_real_run_does(world, monkeypatch):
    monkeypatch.setattr("imports.services.BATCH_SIZE", 2)
    rows = [{"source_id": "a", "name": "A"}, {"source_id": "b", "name": "B"},
            {"source_id": "a", "name": "A"},  # the same again, two batches on: unchanged
            {"source_id": "b", "name": "B2"},  # changed: updated
            {"source_id": "c", "name": "C"}]
    dry = run_job(job_for(world.a, persons_csv(rows), mode="dry_run").pk)
    real = run_job(job_for(world.a, persons_csv(rows), source="test").pk)
    assert (dry.created, dry.updated, dry.unchanged) == (real.created, real.updated, real.unchanged) == (3, 1, 1)


def test_command_sync_prints_counts_and_fails_non_zero(world, investigator, tmp_path, capsys):
    path = tmp_path / "p.csv"
    path.write_bytes(persons_csv(GOOD))
    call_command("import_file", str(path), "--kind", "persons", "--agency", "SSB", "--user", "inv-a1",
                 "--source", "cmd", "--sync")
    assert "created 3" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"nope,nada\n1,2\n")
    with pytest.raises(CommandError):
        call_command("import_file", str(bad), "--kind", "persons", "--agency", "SSB", "--sync")


def test_api_upload_202_errors_and_csv(world, investigator, client_for, django_capture_on_commit_callbacks,
                                       eager):
    api = client_for(investigator)
    upload = ContentFile(persons_csv(GOOD + BAD), name="people.csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/imports/", {"file": upload, "kind": "persons", "mode": "partial",
                                                 "source": "api"}, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    job_id = response.json()["id"]
    detail = api.get(f"/api/v1/imports/{job_id}/").json()
    assert detail["status"] == "succeeded" and detail["created"] == 3 and detail["failed_rows"] == 2
    errors = api.get(f"/api/v1/imports/{job_id}/errors/")
    assert errors.status_code == 200
    body = errors.json()
    items = body["results"] if isinstance(body, dict) else body
    assert {"row", "field", "message", "values"} == set(items[0]) and items[0]["row"] == 4
    # Each error row carries its row's values as the file gave them, to find and fix it.
    row_four = {column: BAD[0].get(column, "") for column in PERSON_COLUMNS}
    assert [item["values"] for item in items if item["row"] == 4] == [row_four] * 3
    as_csv = api.get(f"/api/v1/imports/{job_id}/errors/?format=csv")
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(as_csv.getvalue().decode())))
    assert list(lines[0]) == ["row", "field", "message", "values"]
    assert [json.loads(line["values"]) for line in lines if line["row"] == "5"] == [
        {column: BAD[1].get(column, "") for column in PERSON_COLUMNS}]
    assert api.get(f"/api/v1/imports/{job_id}/errors.csv/").status_code == 200
    other = factories.user(world.b, "investigator", world.b1, username="inv-b1")
    assert client_for(other).get(f"/api/v1/imports/{job_id}/").status_code == 404
    assert api.get("/api/v1/imports/").status_code == 200


def test_api_rejects_bad_kind_mode_role_and_size(world, investigator, client_for):
    api = client_for(investigator)
    for data in ({"kind": "planets"}, {"kind": "persons", "mode": "sometimes"}):
        upload = ContentFile(persons_csv(GOOD), name="p.csv")
        assert api.post("/api/v1/imports/", {"file": upload, "mode": "partial", **data},
                        format="multipart").status_code == 400
    analyst = factories.user(world.a, "analyst", world.a1, username="ana-a1")
    upload = ContentFile(persons_csv(GOOD), name="p.csv")
    assert client_for(analyst).post("/api/v1/imports/", {"file": upload, "kind": "persons"},
                                    format="multipart").status_code == 403
    with override_settings(IMPORT_MAX_BYTES=100):
        upload = ContentFile(persons_csv(GOOD), name="p.csv")
        assert api.post("/api/v1/imports/", {"file": upload, "kind": "persons"},
                        format="multipart").status_code == 413
    assert not ImportJob.objects.exists()


def shipments_csv(rows: list[dict]) -> bytes:
    columns = ["source_id", "reference", "hs_code", "quantity_kg", "origin_country", "destination_country",
               "transit_countries", "consignor", "consignor_country", "consignee", "consignee_country",
               "consignee_registration_number", "notify_party", "notify_party_country"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


SHIPMENTS = [
    {"source_id": "s1", "reference": "BL-1", "hs_code": "8110", "quantity_kg": "1200.5", "origin_country": "CN",
     "destination_country": "DE", "transit_countries": "VN;TR", "consignor": "Guangxi Antimony Smelting Co., Ltd.",
     "consignor_country": "CN", "consignee": "Antimony Trading Co., Ltd.", "consignee_country": "HK"},
    {"source_id": "s2", "reference": "BL-2", "origin_country": "CN", "destination_country": "DE",
     "consignee": "ANTIMONY TRADING CO LTD", "consignee_country": "HK", "notify_party": "Antimony Trading",
     "notify_party_country": "SG"},
    {"source_id": "s3", "reference": "BL-3", "origin_country": "QQ", "consignee": "", "consignee_country": "HK"},
]


def test_shipments_resolve_parties_to_one_organisation(world):
    existing = factories.organization(world.a, "Guangxi Antimony Smelting Company Limited", jurisdiction="CN")
    job = run_job(job_for(world.a, shipments_csv(SHIPMENTS), kind="shipments", source="customs").pk)
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.created, job.failed_rows) == (3, 2, 1) and accounted(job)
    fields = {e.field for e in ImportRowError.objects.filter(job=job, row=3)}
    assert {"origin_country", "consignee"} <= fields
    from shipments.models import Shipment

    one, two = Shipment.objects.get(source_id="s1"), Shipment.objects.get(source_id="s2")
    assert one.consignee_id == two.consignee_id  # "Co., Ltd." and "CO LTD" in HK: one organisation
    assert one.consignor_id == existing.pk
    assert two.notify_party_id not in (None, two.consignee_id)  # same name, another country
    assert one.transit_countries == ["VN", "TR"] and str(one.quantity_kg) == "1200.500"
    assert Entity.objects.filter(type="organization").count() == 3
    again = run_job(job_for(world.a, shipments_csv(SHIPMENTS), kind="shipments", source="customs").pk)
    assert (again.created, again.updated, again.unchanged, again.failed_rows) == (0, 0, 2, 1)
    assert Entity.objects.filter(type="organization").count() == 3 and Shipment.objects.count() == 2


def test_shipments_atomic_and_dry_run_create_no_parties(world):
    for mode in ("atomic", "dry_run"):
        job = run_job(job_for(world.a, shipments_csv(SHIPMENTS), kind="shipments", mode=mode).pk)
        assert accounted(job) and job.failed_rows == 1
    assert not Entity.objects.exists()
    job = run_job(job_for(world.a, shipments_csv(SHIPMENTS[:2]), kind="shipments", mode="atomic").pk)
    assert job.status == "succeeded" and job.created == 2
    assert Entity.objects.count() == 3


def test_admin_import_page_uploads_and_shows_the_job(world, client, django_capture_on_commit_callbacks, eager):
    clerk = factories.user(world.a, "investigator", world.a1, username="clerk-a1")
    clerk.is_staff = True
    clerk.save()
    client.force_login(clerk)
    assert client.get("/admin/imports/importjob/add/").status_code == 200
    upload = ContentFile(persons_csv(GOOD + BAD), name="people.csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/imports/importjob/add/", {"file": upload, "kind": "persons",
                                                                 "mode": "partial", "source": "admin"})
    assert response.status_code == 302, response.content[:2000]
    job = ImportJob.objects.get(source="admin")
    assert job.agency == world.a and job.created_by == clerk
    job.refresh_from_db()
    assert job.status == "succeeded" and job.created == 3
    page = client.get(f"/admin/imports/importjob/{job.pk}/change/")
    assert page.status_code == 200 and b"birth_date" in page.content
    assert client.get("/admin/imports/importjob/").status_code == 200


def test_a_job_whose_worker_died_is_resumed_without_duplicates(world, monkeypatch):
    import datetime

    from imports import services

    monkeypatch.setattr(services, "BATCH_SIZE", 10)
    rows = [{"source_id": f"r{i}", "name": f"Person {i}" if i % 7 else ""} for i in range(45)]  # 7 bad rows
    job = job_for(world.a, persons_csv(rows))
    real_flush, calls = services.Importer._flush, []

    def dying_flush(self, batch, counts, write):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("the worker is killed")  # not an Exception: nothing marks the job failed
        return real_flush(self, batch, counts, write)

    monkeypatch.setattr(services.Importer, "_flush", dying_flush)
    with pytest.raises(KeyboardInterrupt):
        run_job(job.pk)
    job.refresh_from_db()
    assert job.status == "running" and job.processed_rows == 20  # the two batches committed, with their counts
    assert (job.created, job.failed_rows) == (17, 3) and Entity.objects.count() == 17
    assert run_job(job.pk).status == "running"  # a live heartbeat: another worker is on it
    assert job.heartbeat_at is not None
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=job.heartbeat_at - datetime.timedelta(hours=1))
    job = run_job(job.pk)
    assert job.status == "succeeded" and accounted(job)
    # It carried on after the committed batches: every row counted once, written once, reported once.
    assert (job.total_rows, job.created, job.unchanged, job.failed_rows) == (45, 38, 0, 7)
    assert Entity.objects.count() == 38
    assert sorted(ImportRowError.objects.filter(job=job).values_list("row", flat=True)) == [1, 8, 15, 22, 29, 36, 43]
    assert AuditEvent.objects.filter(request_id=str(job.pk), action="create").count() == 38
    assert run_job(job.pk).created == 38  # a finished job is left as it is


def test_a_new_rows_create_event_is_the_one_a_save_would_audit(world):
    """core.snapshots.created_json (a bulk writer's create event) is diff({}, snapshot(instance)) as the audit
    trail's canonical JSON."""
    import datetime
    from decimal import Decimal

    from audit.services import _canonical
    from core.bulk import NewRows
    from core.snapshots import created_json, diff, snapshot
    from shipments.models import Shipment

    consignee = factories.organization(world.a, "Antimony Trading Co., Ltd.")
    row = NewRows(Shipment).new({
        "agency_id": world.a.pk, "reference": "BL-1", "commodity_id": "antimony", "quantity_kg": Decimal("12.500"),
        "transit_countries": ["VN", "TH"], "departed_on": datetime.date(2024, 5, 1), "consignee_id": consignee.pk,
        "source": "s", "source_id": "1", "declared_description": "",
    })
    # A new shipment has no cases and no legs yet: its create event says so, as the API's does.
    created = {**diff({}, snapshot(Shipment(**row), related=False)), "cases": [None, []], "legs": [None, []]}
    assert created["consignee"] == [None, str(consignee.pk)]
    assert created_json(Shipment, row) == _canonical(created)  # the text the audit trail hashes
    row.update(declared_description='Said "ingots"\n锑锭 \x01', seized_on=datetime.date(2024, 6, 2))
    assert created_json(Shipment, row) == _canonical(
        {**diff({}, snapshot(Shipment(**row), related=False)), "cases": [None, []], "legs": [None, []]})


@pytest.mark.django_db(transaction=True)
def test_a_second_delivery_leaves_a_job_whose_transaction_is_open_to_its_worker(world):
    """An atomic import's write pass holds the job's row in its transaction; another delivery of the same
    job (re-enqueued because that pass's heartbeat is invisible) returns at once instead of waiting."""
    import threading

    from django.db import connection, transaction

    job = job_for(world.a, persons_csv(GOOD))
    from django.utils import timezone

    ImportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now())
    locked, release = threading.Event(), threading.Event()

    def worker_inside_its_transaction() -> None:
        try:
            with transaction.atomic():
                ImportJob.objects.filter(pk=job.pk).update(processed_rows=1)  # as a write pass's progress does
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=worker_inside_its_transaction)
    holder.start()
    try:
        assert locked.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # waiting for the lock would fail the call, not hang it
        same = run_job(job.pk)
        assert same.status == "running" and not Entity.objects.exists()
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert run_job(job.pk).status == "running"  # its heartbeat is live: nobody else takes it


@pytest.mark.django_db(transaction=True)
def test_a_key_of_the_batch_in_flight_waits_for_its_commit(world, monkeypatch):
    """Outside a transaction a writer thread commits batch N while batch N+1 is checked; a record batch N
    creates and batch N+1 names again must be found, not created twice (each batch here repeats the last)."""
    monkeypatch.setattr("imports.services.BATCH_SIZE", 2)
    rows = [{"source_id": f"k{i % 2}", "name": f"Name {i // 2}"} for i in range(40)]
    job = run_job(job_for(world.a, persons_csv(rows)).pk)
    assert job.status == "succeeded", job.error
    assert (job.created, job.updated, job.unchanged, job.failed_rows) == (2, 38, 0, 0)
    assert sorted(Entity.objects.values_list("source_id", "name")) == [("k0", "Name 19"), ("k1", "Name 19")]


def test_an_ftm_link_changed_in_a_later_file_is_updated_in_the_database(world):
    from entities.models import Link

    def ftm_file(share: str) -> bytes:
        lines = [
            {"id": "o1", "schema": "Person", "properties": {"name": ["Zhang Wei"]}},
            {"id": "c1", "schema": "Company", "properties": {"name": ["Antimony Trading Co., Ltd."]}},
            {"id": "own1", "schema": "Ownership", "properties": {"owner": ["o1"], "asset": ["c1"],
                                                                  "percentage": [share]}},
        ]
        return "\n".join(json.dumps(line) for line in lines).encode()

    first = run_job(job_for(world.a, ftm_file("51"), kind="ftm", source="reg").pk)
    assert first.status == "succeeded" and first.created == 3
    second = run_job(job_for(world.a, ftm_file("75.5"), kind="ftm", source="reg").pk)
    assert (second.created, second.updated, second.unchanged) == (0, 1, 2)
    link = Link.objects.get(provenance_source="reg", provenance_id="own1")
    assert str(link.share_pct) == "75.500" and link.version == 2
    update = AuditEvent.objects.get(request_id=str(second.pk), action="update")
    assert update.object_id == str(link.pk) and update.changes["share_pct"] == ["51.000", "75.500"]
