"""Watchlists (API.md § Watchlists, § Bulk import `ofac_sdn`): the SDN list imported from its legacy CSV files, an
FtM file with topics, the watchlist and its entries, delisting by a newer list, the API and the filters."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from alerts.services import Finding, settle
from audit.models import AuditEvent
from audit.services import verify_chain
from entities.models import Entity
from imports.models import ImportJob
from imports.services import run_job
from watchlists.models import Watchlist, WatchlistEntry

from . import factories
from .test_imports_data import SHARED

pytestmark = pytest.mark.django_db

OFAC = SHARED / "ofac"
needs_ofac = pytest.mark.skipif(not (OFAC / "ofac_sdn.csv").is_file(),
                                reason=f"the shared SDN files are not at {OFAC} (set SHARED_DATA_DIR)")

SDN = (
    '36,AEROCARIBBEAN AIRLINES,-0- ,CUBA,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n'
    '306,BANCO NACIONAL DE CUBA,-0- ,CUBA,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,a.k.a. \'BNC\'.\n'
    '8155,"GOMEZ ALVAREZ, Sor Teresa",individual,SDNTK,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"DOB 27 Jun 1956; '
    'POB Amalfi, Antioquia, Colombia; nationality Colombia; Cedula No. 21446537 (Colombia); Passport 21446537 '
    '(Colombia); Gender Female."\n'
    '25306,GOLSAN,vessel,IRAN] [NPWMD] [IFSR,-0- ,-0- ,General Cargo,-0- ,-0- ,Iran,-0- ,"Vessel Registration '
    'Identification IMO 9165815; Linked To: ISLAMIC REPUBLIC OF IRAN SHIPPING LINES."\n'
)
ADD = '306,199,"Zweierstrasse 35","Zurich CH-8022","Switzerland",-0- \n8155,5,-0- ,"Medellin","Colombia",-0- \n\x1a'
ALT = '306,220,aka,NATIONAL BANK OF CUBA,-0- \n8155,31,aka,"GOMEZ, Teresa",-0- \n'


def _zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _job(agency, content: bytes, *, kind: str = "ofac_sdn", mode: str = "partial", source: str = "",
         name: str = "sdn.zip", by=None) -> ImportJob:
    job = ImportJob(agency=agency, kind=kind, mode=mode, source=source, created_by=by)
    job.file.save(name, ContentFile(content), save=False)
    job.save()
    return job


def _run(agency, content: bytes, **options) -> ImportJob:
    job = run_job(_job(agency, content, **options).pk)
    assert job.created + job.updated + job.unchanged + job.failed_rows == job.total_rows
    return job


def _real_zip() -> bytes:
    return _zip({f"SDN/{part.upper()}.CSV": (OFAC / f"ofac_{part}.csv").read_bytes() for part in ("sdn", "add", "alt")})


@needs_ofac
def test_the_real_sdn_list_imports_as_a_watchlist(world):
    started = time.monotonic()
    job = _run(world.a, _real_zip())
    took = time.monotonic() - started
    print(f"\nSDN list, 9,043 entries: imported in {took:.1f} s")
    assert job.status == "succeeded", job.error
    assert job.source == "ofac-sdn"
    # 9,044 lines, 9,043 entries: the last line repeats entry number 2677 (another entity), a bad row
    assert (job.total_rows, job.created, job.failed_rows) == (9044, 9043, 1)
    assert job.errors.get().row == 9044  # (how fast it imports is bench/import.py's to say, not a test's)

    listed = Entity.objects.filter(agency=world.a, lists__contains=["ofac-sdn"])
    assert listed.count() == 9043
    assert listed.filter(type="person").count() == 4643
    assert listed.filter(type="organization", kind="other").count() == 700  # vessels and aircraft
    assert not listed.exclude(topics=["sanction"]).exists()
    watchlist = Watchlist.objects.get(agency=world.a, source="ofac-sdn")
    assert (watchlist.kind, watchlist.entries, watchlist.delisted, watchlist.job_id) == ("ofac_sdn", 9043, 0, job.pk)
    assert watchlist.imported_at is not None

    bank = Entity.objects.get(agency=world.a, source="ofac-sdn", source_id="306")
    assert bank.type == "organization" and bank.name == "BANCO NACIONAL DE CUBA"
    assert "NATIONAL BANK OF CUBA" in bank.names
    assert {"text": "Zweierstrasse 35, Zurich CH-8022", "country": "CH"} in bank.addresses
    entry = WatchlistEntry.objects.get(watchlist=watchlist, entity=bank)
    assert entry.programmes == ["CUBA"] and entry.remarks == "a.k.a. 'BNC'." and entry.delisted_at is None

    person = Entity.objects.get(agency=world.a, source="ofac-sdn", source_id="8155")
    assert person.type == "person" and person.name == "Sor Teresa Gomez Alvarez"
    assert "GOMEZ ALVAREZ, Sor Teresa" in person.names
    assert str(person.birth_date) == "1956-06-27" and person.birth_place == "Amalfi, Antioquia, Colombia"
    assert {"scheme": "passport", "number": "21446537", "country": "CO"} in person.identifiers
    foz = Entity.objects.get(agency=world.a, source="ofac-sdn", source_id="26890")
    assert (foz.name, foz.nationalities, foz.gender) == ("Husen Foz", ["SY", "KN", "TR"], "female")
    assert {"scheme": "passport", "number": "U08527769", "country": "TR"} in foz.identifiers
    vessel = Entity.objects.get(agency=world.a, source="ofac-sdn", source_id="25306")
    assert (vessel.kind, vessel.jurisdiction) == ("other", "IR")
    assert WatchlistEntry.objects.get(entity=vessel).programmes == ["IRAN", "NPWMD", "IFSR"]
    assert verify_chain(str(world.a.pk)).ok

    # the same list again changes no record and no entry
    versions = dict(listed.values_list("pk", "version"))
    again = _run(world.a, _real_zip())
    assert again.status == "succeeded", again.error
    assert (again.created, again.updated, again.unchanged, again.failed_rows) == (0, 0, 9043, 1)
    assert dict(listed.values_list("pk", "version")) == versions
    assert not AuditEvent.objects.filter(request_id=str(again.pk), object_type="watchlistentry").exists()
    watchlist.refresh_from_db()
    assert (watchlist.entries, watchlist.delisted, watchlist.job_id) == (9043, 0, again.pk)


@needs_ofac
def test_the_sdn_file_alone(world):
    job = _run(world.a, (OFAC / "ofac_sdn.csv").read_bytes(), name="sdn.csv", source="us-sdn")
    assert job.status == "succeeded", job.error
    assert (job.total_rows, job.created, job.failed_rows) == (9044, 9043, 1)
    bank = Entity.objects.get(agency=world.a, source="us-sdn", source_id="306")
    assert bank.addresses == [] and bank.lists == ["us-sdn"]
    assert Watchlist.objects.get(agency=world.a, source="us-sdn").entries == 9043


def test_a_newer_list_delists_and_closes_the_alerts_of_what_it_no_longer_names(world):
    investigator = factories.user(world.a, "investigator", world.a1)
    first = _run(world.a, _zip({"sdn.csv": SDN, "add.csv": ADD, "alt.csv": ALT}), by=investigator)
    assert first.status == "succeeded", first.error
    assert first.created == 4
    airline = Entity.objects.get(source="ofac-sdn", source_id="36")
    shipment = factories.shipment(world.a)
    settle([shipment], ["watchlist_match"], {shipment.pk: [Finding(
        "watchlist_match", "high", "consignee matches an SDN entry",
        related=[{"type": "organization", "id": str(airline.pk), "label": airline.name, "list": "ofac-sdn",
                  "programmes": ["CUBA"], "score": 0.93, "reasons": "name"}])]})
    alert = Alert.objects.get(shipment=shipment, rule="watchlist_match")
    assert alert.status == "open"

    newer = SDN.split("\n", 1)[1]  # the airline is gone
    second = _run(world.a, _zip({"SDN.CSV": newer, "ADD.CSV": ADD, "ALT.CSV": ALT}), by=investigator)
    assert second.status == "succeeded", second.error
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    airline.refresh_from_db()
    assert airline.lists == [] and airline.topics == ["sanction"]
    entry = WatchlistEntry.objects.get(entity=airline)
    assert entry.delisted_at is not None
    watchlist = Watchlist.objects.get(agency=world.a, source="ofac-sdn")
    assert (watchlist.entries, watchlist.delisted) == (3, 1)
    alert.refresh_from_db()
    assert (alert.status, alert.closed_reason) == ("dismissed", "delisted")
    assert AuditEvent.objects.filter(request_id=str(second.pk), object_type="organization",
                                     object_id=str(airline.pk), action="update").exists()
    assert AuditEvent.objects.filter(object_type="alert", object_id=str(alert.pk), action="update").exists()

    # listed again: it comes back
    third = _run(world.a, _zip({"sdn.csv": SDN}), by=investigator)
    assert third.status == "succeeded", third.error
    airline.refresh_from_db()
    entry.refresh_from_db()
    assert airline.lists == ["ofac-sdn"] and entry.delisted_at is None
    watchlist.refresh_from_db()
    assert (watchlist.entries, watchlist.delisted) == (4, 0)
    assert verify_chain(str(world.a.pk)).ok


@pytest.mark.parametrize("mode", ["dry_run", "atomic"])
def test_no_delisting_without_a_full_import(world, mode):
    assert _run(world.a, SDN.encode(), name="sdn.csv").status == "succeeded"
    smaller = SDN.split("\n", 1)[1]
    if mode == "atomic":
        smaller += "999,BROKEN LINE\n"  # a bad row: an atomic import writes nothing
    job = _run(world.a, smaller.encode(), name="sdn.csv", mode=mode)
    assert job.status == ("succeeded" if mode == "dry_run" else "failed"), job.error
    airline = Entity.objects.get(source="ofac-sdn", source_id="36")
    assert airline.lists == ["ofac-sdn"]
    assert WatchlistEntry.objects.get(entity=airline).delisted_at is None
    watchlist = Watchlist.objects.get(agency=world.a)
    assert (watchlist.entries, watchlist.delisted) == (4, 0)


def test_a_cancelled_list_import_keeps_the_entries_it_wrote_and_delists_nothing(world, monkeypatch):
    from imports.services import Importer

    assert _run(world.a, SDN.encode(), name="sdn.csv").status == "succeeded"
    monkeypatch.setattr("imports.services.BATCH_SIZE", 2)
    monkeypatch.setattr(Importer, "cancel_requested", lambda self: True)  # asked to stop during the first batch
    smaller = _run(world.a, SDN.split("\n", 1)[1].encode(), name="sdn.csv")
    assert (smaller.status, smaller.processed_rows) == ("cancelled", 2)
    airline = Entity.objects.get(source="ofac-sdn", source_id="36")
    assert airline.lists == ["ofac-sdn"] and WatchlistEntry.objects.get(entity=airline).delisted_at is None
    assert Watchlist.objects.get(source="ofac-sdn").entries == 4
    fresh = _run(world.a, SDN.encode(), name="sdn.csv", source="fresh-list")
    assert (fresh.status, fresh.created) == ("cancelled", 2)
    assert Watchlist.objects.get(source="fresh-list").entries == 2


def test_an_atomic_list_import_keeps_its_watchlist(world):
    job = _run(world.a, SDN.encode(), name="sdn.csv", mode="atomic")
    assert (job.status, job.created) == ("succeeded", 4), job.error
    assert Watchlist.objects.get(agency=world.a, source="ofac-sdn").entries == 4
    dry = _run(world.a, SDN.encode(), name="sdn.csv", mode="dry_run", source="never-written")
    assert (dry.status, dry.created) == ("succeeded", 4), dry.error
    assert not Watchlist.objects.filter(source="never-written").exists()
    assert not Entity.objects.filter(lists__contains=["never-written"]).exists()


def test_bad_sdn_files_fail_with_a_clear_error(world):
    cases = {
        "not a zip nor an SDN file": (b"name,kind\nACME,company\n", "not an SDN list file"),
        "a zip without an sdn file": (_zip({"add.csv": ADD, "alt.csv": ALT}), "no SDN file"),
        "a broken zip": (b"PK\x03\x04" + b"\x00" * 200, "not a readable zip"),
        "a side file of the wrong shape": (_zip({"sdn.csv": SDN, "add.csv": "306,199,Zurich\n"}), "add.csv"),
        "an empty file": (b"", "empty"),
    }
    for label, (content, message) in cases.items():
        job = _run(world.a, content, name="upload.bin")
        assert job.status == "failed", label
        assert message in job.error, (label, job.error)
    assert not Entity.objects.exists() and not Watchlist.objects.exists()


def test_a_line_of_the_wrong_shape_is_a_bad_row(world):
    job = _run(world.a, (SDN + "999,ONLY THREE,-0-\n").encode(), name="sdn.csv")
    assert job.status == "succeeded", job.error
    assert (job.created, job.failed_rows) == (4, 1)
    error = job.errors.get()
    assert error.row == 5 and "12 values" in error.message


FTM_LINES = [
    {"id": "os-1", "schema": "Person", "properties": {"name": ["Ivan Petrov"], "topics": ["sanction"],
                                                      "program": ["RU-2022"]}},
    {"id": "os-2", "schema": "Company", "properties": {"name": ["Petrov Trading LLC"], "topics": ["sanction",
                                                                                                   "crime.fin"]}},
    {"id": "os-3", "schema": "Person", "properties": {"name": ["Anna Unlisted"]}},
]


def _ftm(lines: list[dict]) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode()


def test_an_ftm_file_with_topics_makes_a_watchlist(world):
    job = _run(world.a, _ftm(FTM_LINES), kind="ftm", source="opensanctions", name="entities.ftm.json")
    assert job.status == "succeeded", job.error
    watchlist = Watchlist.objects.get(agency=world.a, source="opensanctions")
    assert (watchlist.kind, watchlist.entries) == ("ftm", 2)
    petrov = Entity.objects.get(source_id="os-1")
    assert petrov.topics == ["sanction"] and petrov.lists == ["opensanctions"]
    assert WatchlistEntry.objects.get(entity=petrov).programmes == ["RU-2022"]
    assert Entity.objects.get(source_id="os-2").topics == ["sanction", "crime.fin"]
    assert Entity.objects.get(source_id="os-3").lists == []

    again = _run(world.a, _ftm(FTM_LINES[1:]), kind="ftm", source="opensanctions", name="entities.ftm.json")
    assert again.status == "succeeded", again.error
    petrov.refresh_from_db()
    assert petrov.lists == []
    watchlist.refresh_from_db()
    assert (watchlist.entries, watchlist.delisted) == (1, 1)


def test_an_ftm_file_without_topics_is_no_list(world):
    job = _run(world.a, _ftm(FTM_LINES[2:]), kind="ftm", source="people", name="entities.ftm.json")
    assert job.status == "succeeded", job.error
    assert not Watchlist.objects.exists()


# --- the API -----------------------------------------------------------------------------------------------------


def test_persons_and_organisations_show_and_filter_by_lists_and_topics(world, client_for):
    _run(world.a, _zip({"sdn.csv": SDN, "add.csv": ADD, "alt.csv": ALT}))
    _run(world.a, _ftm(FTM_LINES), kind="ftm", source="opensanctions", name="entities.ftm.json")
    plain = factories.person(world.a, "Plain Person")
    client = client_for(factories.user(world.a, "viewer", world.a1))

    body = client.get("/api/v1/persons/", {"list": "ofac-sdn"}).json()
    assert [p["name"] for p in body["results"]] == ["Sor Teresa Gomez Alvarez"]
    assert body["results"][0]["lists"] == ["ofac-sdn"] and body["results"][0]["topics"] == ["sanction"]
    names = {p["name"] for p in client.get("/api/v1/persons/", {"list": "ofac-sdn,opensanctions"}).json()["results"]}
    assert names == {"Sor Teresa Gomez Alvarez", "Ivan Petrov"}
    repeated = client.get("/api/v1/persons/?topic=crime.fin&topic=sanction").json()["results"]
    assert {p["name"] for p in repeated} == names
    orgs = {o["name"] for o in client.get("/api/v1/organizations/", {"topic": "crime.fin"}).json()["results"]}
    assert orgs == {"Petrov Trading LLC"}
    assert client.get(f"/api/v1/persons/{plain.pk}/").json()["lists"] == []
    hits = client.get("/api/v1/search/", {"q": "Banco Nacional de Cuba"}).json()["results"]
    assert any(hit.get("label", hit.get("name")) == "BANCO NACIONAL DE CUBA" for hit in hits), hits


def test_topics_are_written_through_the_api_and_lists_are_not(world, client_for):
    client = client_for(factories.user(world.a, "investigator", world.a1))
    response = client.post("/api/v1/persons/", {"name": "Topic Person", "topics": ["Role.PEP", "sanction"],
                                                "lists": ["ofac-sdn"]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["topics"] == ["role.pep", "sanction"] and response.json()["lists"] == []
    bad = client.post("/api/v1/persons/", {"name": "Bad Topic", "topics": ["not a topic!"]}, format="json")
    assert bad.status_code == 400 and "topics" in bad.json()


def test_watchlists_api(world, client_for):
    job = _run(world.a, SDN.encode(), name="sdn.csv")
    client = client_for(factories.user(world.a, "viewer", world.a1))
    body = client.get("/api/v1/watchlists/").json()
    assert body["count"] == 1
    item = body["results"][0]
    assert {k: item[k] for k in ("source", "kind", "entries", "delisted", "job")} == {
        "source": "ofac-sdn", "kind": "ofac_sdn", "entries": 4, "delisted": 0, "job": str(job.pk)}
    with CaptureQueriesContext(connection) as queries:
        detail = client.get(f"/api/v1/watchlists/{item['id']}/")
    assert detail.status_code == 200 and detail["ETag"] == f'"{detail.json()["version"]}"'
    table = f'FROM "{Watchlist._meta.db_table}"'
    assert len([q for q in queries.captured_queries if q["sql"].startswith("SELECT") and table in q["sql"]]) == 1
    assert client.post("/api/v1/watchlists/", {"source": "x"}, format="json").status_code in (403, 405)
    assert "watchlists" in client.get("/api/v1/").json()


def test_sdn_import_through_the_api_defaults_its_source(world, client_for):
    client = client_for(factories.user(world.a, "investigator", world.a1))
    upload = ContentFile(SDN.encode(), name="sdn.csv")
    response = client.post("/api/v1/imports/", {"kind": "ofac_sdn", "file": upload}, format="multipart")
    assert response.status_code == 202, response.json()
    assert response.json()["source"] == "ofac-sdn"


# --- the admin ---------------------------------------------------------------------------------------------------


ENTITY_LINK = re.compile(rb"/admin/entities/(?:person|organization)/[0-9a-f-]{36}/change/")


def test_admin_shows_watchlists_and_entries_read_only(world):
    _run(world.a, _zip({"sdn.csv": SDN, "add.csv": ADD, "alt.csv": ALT}))
    _run(world.b, _zip({"sdn.csv": SDN}), source="asb-list")
    _run(world.a, _zip({"sdn.csv": SDN.split("\n", 1)[1]}))  # the airline delisted
    client = factories.admin_client(factories.user(world.a, "analyst", world.a1))
    lists = client.get("/admin/watchlists/watchlist/")
    assert lists.status_code == 200
    assert b"ofac-sdn" in lists.content and b"asb-list" not in lists.content  # another agency's list never shows
    entries = client.get("/admin/watchlists/watchlistentry/")
    assert entries.status_code == 200
    bank = Entity.objects.get(agency=world.a, source_id="306")
    assert f"/admin/entities/organization/{bank.pk}/change/".encode() in entries.content
    assert b"asb-list" not in entries.content
    delisted = client.get("/admin/watchlists/watchlistentry/", {"delisted": "yes"})
    assert len(ENTITY_LINK.findall(delisted.content)) == 1 and b"AEROCARIBBEAN" in delisted.content
    by_programme = client.get("/admin/watchlists/watchlistentry/", {"programme": "SDNTK"})
    assert b"Sor Teresa Gomez Alvarez" in by_programme.content and b"BANCO" not in by_programme.content
    entry = WatchlistEntry.objects.get(entity=bank)
    page = client.get(f"/admin/watchlists/watchlistentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get("/admin/watchlists/watchlist/add/").status_code == 403
    record = client.get(f"/admin/entities/organization/{bank.pk}/change/")
    assert record.status_code == 200 and b"Watchlists" in record.content and b"ofac-sdn" in record.content
