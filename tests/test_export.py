"""Exports of lists (API.md § Basics, § Bulk import): `?format=csv|xlsx|ftm`, whole, filtered, scoped, audited,
and read back by the bulk import unchanged."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from followthemoney import model

from audit.models import AuditEvent
from imports.columns import table

from . import factories

pytestmark = pytest.mark.django_db

PERSONS, ORGS, LINKS, SHIPMENTS = "/api/v1/persons/", "/api/v1/organizations/", "/api/v1/links/", "/api/v1/shipments/"
# What the API answers of a record that the export carries (the rest is the record's own: id, agency, times…).
PERSON_FIELDS = ["name", "names", "gender", "birth_date", "birth_place", "nationalities", "identifiers", "addresses",
                 "phones", "emails", "notes", "source", "source_id", "topics"]
ORG_FIELDS = ["name", "names", "kind", "jurisdiction", "registration_number", "incorporated_on", "dissolved_on",
              "identifiers", "addresses", "phones", "emails", "website", "notes", "source", "source_id", "topics"]
LINK_FIELDS = ["kind", "subtype", "share_pct", "amount", "currency", "start_date", "end_date", "description",
               "confidence"]
SHIPMENT_FIELDS = ["reference", "commodity", "hs_code", "declared_hs_code", "declared_description", "quantity_kg",
                   "purity_pct", "declared_value", "currency", "origin_country", "destination_country",
                   "transit_countries", "status", "seized_on", "seized_quantity_kg", "seizure_location", "source",
                   "source_id"]
PARTY_FIELDS = ["name", "jurisdiction", "registration_number"]
# Cells a spreadsheet would run as formulas, and one that already begins with the guard: each must come back as is.
FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "'=not a formula", "'quoted"]


def created(api, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(url, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


def csv_rows(content: bytes) -> tuple[list[str], list[dict[str, str]]]:
    assert content.startswith("\ufeff".encode())
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig")))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


def xlsx_rows(content: bytes) -> tuple[list[str], list[dict[str, str]]]:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    return rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def every(api, url: str) -> list[dict[str, Any]]:
    """Every row of a JSON list, following `next`."""
    found, page = [], api.get(url + ("&" if "?" in url else "?") + "page_size=500").json()
    found += page["results"]
    while page["next"]:
        page = api.get(page["next"]).json()
        found += page["results"]
    return found


def imported(api, content: bytes, kind: str, source: str, name: str, capture) -> dict[str, Any]:
    with capture(execute=True):
        response = api.post("/api/v1/imports/", {"file": ContentFile(content, name=name), "kind": kind,
                                                 "mode": "partial", "source": source}, format="multipart")
    assert response.status_code == 202, response.content
    job = api.get(f"/api/v1/imports/{response.json()['id']}/").json()
    errors = api.get(f"/api/v1/imports/{job['id']}/errors/").json()["results"]
    assert job["status"] == "succeeded" and errors == [], (job, errors)
    return job


def picked(records: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    return sorted(({f: r[f] for f in fields} for r in records), key=lambda r: json.dumps(r, sort_keys=True))


@pytest.fixture
def other(world, client_for):
    return client_for(factories.user(world.b, "investigator", world.b1, username="inv-b1"))


@pytest.fixture
def people(api):
    """Persons written through the API (so their values are the ones the API keeps), formula-like text included."""
    rows: list[dict[str, Any]] = [
        {"name": "Zhang Wei", "names": ["张伟", "Wei Zhang"], "gender": "male", "birth_date": "1975-03-02",
         "birth_place": "Shenzhen", "nationalities": ["CN", "HK"],
         "identifiers": [{"scheme": "passport", "number": "E12345678", "country": "CN"},
                         {"scheme": "national_id", "number": "440301197503021234", "country": ""}],
         "addresses": [{"text": "1 Harbour Rd, Wan Chai", "country": "HK"},
                       {"text": "8 Queen's Rd", "country": "HK"}],
         "phones": ["+85221234567"], "emails": ["zw@example.com"], "notes": FORMULAS[0], "source": "registry",
         "source_id": "p1", "topics": ["sanction"]},
        {"name": "Ivan Petrov", "nationalities": ["RU"], "notes": FORMULAS[1], "source": "registry",
         "source_id": "p2", "birth_place": FORMULAS[5]},
    ]
    rows += [{"name": f"Person {i:02d}", "notes": FORMULAS[i % len(FORMULAS)], "source": "registry",
              "source_id": f"n{i}"} for i in range(2, 60)]
    return [created(api, PERSONS, row) for row in rows]


def test_persons_csv_has_the_import_columns_and_every_filtered_row(api, people):
    response = api.get(PERSONS, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="persons-')
    assert response["Content-Disposition"].endswith('.csv"')
    header, rows = csv_rows(body_of(response))
    assert header == list(table("persons").header)
    assert len(rows) == 60  # the whole list, not a page of 50
    zhang = next(r for r in rows if r["name"] == "Zhang Wei")
    assert zhang["names"] == "张伟;Wei Zhang"
    assert zhang["identifiers"] == "passport:E12345678:CN;national_id:440301197503021234:"
    assert (zhang["addresses"], zhang["address_country"]) == ("1 Harbour Rd, Wan Chai;8 Queen's Rd", "HK")
    assert zhang["phones"] == "'+85221234567"  # guarded: a spreadsheet would read + as a formula
    assert zhang["notes"] == "'" + FORMULAS[0]
    # The filters and the ordering of the JSON list.
    filtered = csv_rows(body_of(api.get(PERSONS, {"format": "csv", "nationality": "HK"})))[1]
    assert [r["name"] for r in filtered] == ["Zhang Wei"]
    ordered = csv_rows(body_of(api.get(PERSONS, {"format": "csv", "ordering": "-name"})))[1]
    assert [r["name"] for r in ordered] == [r["name"] for r in every(api, f"{PERSONS}?ordering=-name")]
    assert [r["name"] for r in ordered][:3] == ["Zhang Wei", "Person 59", "Person 58"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_persons_and_organisations_reimport_into_another_agency_unchanged(api, other, people, fmt,
                                                                           django_capture_on_commit_callbacks, eager):
    orgs = [created(api, ORGS, {"name": "Harbour Trading Ltd", "names": ["港湾贸易有限公司"], "kind": "trader",
                                "jurisdiction": "HK", "registration_number": "12345678",
                                "incorporated_on": "2019-05-01", "website": "https://harbour.example",
                                "addresses": [{"text": "2 Pier", "country": "HK"}],
                                "phones": ["+85229876543"], "notes": FORMULAS[3], "source": "registry",
                                "source_id": "o1"}),
            created(api, ORGS, {"name": "Nordic Metals AB", "kind": "other", "jurisdiction": "SE",
                                "notes": FORMULAS[4], "dissolved_on": "2024-01-31", "source": "registry",
                                "source_id": "o2"})]
    for url, kind, fields, mine in ((PERSONS, "persons", PERSON_FIELDS, people), (ORGS, "organizations", ORG_FIELDS,
                                                                                   orgs)):
        response = api.get(url, {"format": fmt})
        assert response.status_code == 200
        if fmt == "xlsx":
            assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            content = body_of(response)
            header, rows = xlsx_rows(content)
            assert rows[0]["notes"].startswith("'")  # guarded in the workbook too
        else:
            content = body_of(response)
            header = csv_rows(content)[0]
        assert header == list(table(kind).header)
        job = imported(other, content, kind, "exported", f"{kind}.{fmt}", django_capture_on_commit_callbacks)
        assert (job["created"], job["total_rows"]) == (len(mine), len(mine))
        assert picked(every(other, url), fields) == picked(mine, fields)


def test_same_agency_reimport_creates_nothing_and_changes_nothing(api, people, django_capture_on_commit_callbacks,
                                                                   eager):
    content = body_of(api.get(PERSONS, {"format": "csv"}))
    job = imported(api, content, "persons", "registry", "persons.csv", django_capture_on_commit_callbacks)
    assert (job["created"], job["updated"], job["unchanged"]) == (0, 0, 60)


def test_links_reimport_unchanged(api, django_capture_on_commit_callbacks, eager):
    a, b = (created(api, PERSONS, {"name": n, "source": "registry", "source_id": n}) for n in ("Li Na", "Li Ming"))
    org = created(api, ORGS, {"name": "Gallium Works", "jurisdiction": "CN", "source": "registry", "source_id": "g"})
    ref_a, ref_b = ({"type": "person", "id": r["id"]} for r in (a, b))
    ref_org = {"type": "organization", "id": org["id"]}
    links = [created(api, LINKS, {"kind": "family", "subtype": "sibling", "source": ref_a, "target": ref_b,
                                  "start_date": "2001-01-01", "confidence": "confirmed", "description": FORMULAS[2]}),
             created(api, LINKS, {"kind": "ownership", "source": ref_a, "target": ref_org, "share_pct": "51.5",
                                  "subtype": "shareholder"}),
             created(api, LINKS, {"kind": "financing", "source": ref_org, "target": ref_b, "amount": "1000000.00",
                                  "currency": "CNY"})]
    content = body_of(api.get(LINKS, {"format": "csv"}))
    header, rows = csv_rows(content)
    assert header == list(table("links").header)
    assert {(r["source"], r["target"]) for r in rows} == {(f"person:{a['id']}", f"person:{b['id']}"),
                                                          (f"person:{a['id']}", f"organization:{org['id']}"),
                                                          (f"organization:{org['id']}", f"person:{b['id']}")}
    first = imported(api, content, "links", "links-file", "links.csv", django_capture_on_commit_callbacks)
    assert (first["created"], first["updated"]) == (3, 0)  # links made by the API have no source id: new ones
    again = body_of(api.get(LINKS, {"format": "csv", "ordering": "kind"}))
    rows = csv_rows(again)[1]
    assert len(rows) == 6
    only_imported = [r for r in rows if r["source_id"]]
    file = io.StringIO()
    writer = csv.DictWriter(file, fieldnames=header)
    writer.writeheader()
    writer.writerows(only_imported)
    job = imported(api, file.getvalue().encode(), "links", "links-file", "again.csv",
                   django_capture_on_commit_callbacks)
    assert (job["created"], job["updated"], job["unchanged"]) == (0, 0, 3)
    assert picked(every(api, LINKS), LINK_FIELDS) == picked(links + links, LINK_FIELDS)


def test_shipments_export_party_columns_and_reimport_into_another_agency(api, other, world,
                                                                           django_capture_on_commit_callbacks, eager):
    consignee = created(api, ORGS, {"name": "Harbour Trading Ltd", "jurisdiction": "HK",
                                    "registration_number": "12345678"})
    consignor = created(api, ORGS, {"name": "Yunnan Antimony Co", "jurisdiction": "CN"})
    party = {"type": "organization"}
    shipments = [
        created(api, SHIPMENTS, {"reference": "BL-1", "commodity": "antimony", "hs_code": "811010",
                                 "declared_description": FORMULAS[0], "quantity_kg": "1200.5",
                                 "declared_value": "99.50",
                                 "currency": "USD", "origin_country": "CN", "destination_country": "US",
                                 "consignee": {**party, "id": consignee["id"]},
                                 "consignor": {**party, "id": consignor["id"]}, "source": "customs",
                                 "source_id": "s1"}),
        created(api, SHIPMENTS, {"reference": "BL-2", "status": "seized", "seized_on": "2025-02-03",
                                 "seized_quantity_kg": "10", "origin_country": "CN", "destination_country": "MX",
                                 "source": "customs", "source_id": "s2"}),
    ]
    content = body_of(api.get(SHIPMENTS, {"format": "csv"}))
    header, rows = csv_rows(content)
    assert header == list(table("shipments").header)
    one = next(r for r in rows if r["reference"] == "BL-1")
    assert (one["consignee"], one["consignee_country"], one["consignee_registration_number"]) == \
        ("Harbour Trading Ltd", "HK", "12345678")
    assert (one["consignor"], one["consignor_country"], one["notify_party"]) == ("Yunnan Antimony Co", "CN", "")
    imported(other, content, "shipments", "customs", "shipments.csv", django_capture_on_commit_callbacks)
    theirs = every(other, SHIPMENTS)
    assert picked(theirs, SHIPMENT_FIELDS) == picked(shipments, SHIPMENT_FIELDS)
    made = {o["id"]: o for o in every(other, ORGS)}
    parties = {s["reference"]: made[s["consignee"]["id"]] for s in theirs if s["consignee"]}
    assert {f: parties["BL-1"][f] for f in PARTY_FIELDS} == {f: consignee[f] for f in PARTY_FIELDS}


def test_another_agencys_rows_never_appear(api, other, people):
    mine = created(other, PERSONS, {"name": "Their Own"})
    for fmt in ("csv", "xlsx"):
        content = body_of(other.get(PERSONS, {"format": fmt}))
        rows = (csv_rows if fmt == "csv" else xlsx_rows)(content)[1]
        assert [r["name"] for r in rows] == [mine["name"]]
    lines = body_of(other.get(PERSONS, {"format": "ftm"})).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [mine["id"]]


def test_an_export_is_one_audited_event(api, people, investigator):
    before = AuditEvent.objects.filter(action="export").count()
    content = body_of(api.get(PERSONS, {"format": "csv", "q": "Person 1", "ordering": "name"}))
    assert len(csv_rows(content)[1]) == 10
    events = list(AuditEvent.objects.filter(action="export").order_by("seq"))
    assert len(events) == before + 1
    event = events[-1]
    assert (event.actor, event.object_type, event.agency_code) == (investigator.username, "person", "SSB")
    assert event.changes == {"resource": [None, "persons"], "format": [None, "csv"],
                             "filters": [None, {"q": ["Person 1"], "ordering": ["name"]}],
                             "rows": [None, 10]}


def test_format_override_keeps_json_and_api_and_refuses_the_unknown(api, people):
    assert api.get(PERSONS, {"format": "json"}).json()["count"] == 60
    browsable = api.get(PERSONS, {"format": "api"})
    assert browsable.status_code == 200 and browsable["Content-Type"].startswith("text/html")
    for url, fmt in ((PERSONS, "pdf"), (PERSONS, "CSV"), (f"{PERSONS}{people[0]['id']}/", "csv"),
                     ("/api/v1/cases/", "ftm")):
        response = api.get(url, {"format": fmt})
        assert response.status_code == 400, (url, fmt)
        assert response["Content-Type"] == "application/json"
        assert list(response.json()) == ["format"] and fmt in response.json()["format"][0]
    bad_filter = api.get(PERSONS, {"format": "csv", "birth_date": "not-a-date"})
    assert bad_filter.status_code == 400 and bad_filter["Content-Type"] == "application/json"
    assert list(bad_filter.json()) == ["birth_date"]
    assert AuditEvent.objects.filter(action="export").count() == 0


def test_every_list_exports_its_serializer_fields(world, supervisor, client_for):
    from alerts.models import Alert  # noqa: F401  (the alert below needs its app loaded)

    api = client_for(supervisor)
    case = factories.case(world.a, world.a1, lead=supervisor)
    person = factories.person(world.a, "Defendant One")
    factories.party(case, person)
    factories.note(case, supervisor, body="-1 note")
    factories.prosecution(case, person, charges=(("Art. 151", "Smuggling"),))
    factories.alert(person, case=case)
    lists = {"/api/v1/cases/": "cases", f"/api/v1/cases/{case.pk}/parties/": "cases-parties",
             f"/api/v1/cases/{case.pk}/notes/": "cases-notes", "/api/v1/prosecutions/": "prosecutions",
             "/api/v1/licences/": "licences", "/api/v1/commodities/": "commodities", "/api/v1/alerts/": "alerts",
             "/api/v1/audit/": "audit", "/api/v1/watchlists/": "watchlists", "/api/v1/xref/matches/": "xref-matches",
             "/api/v1/imports/": "imports"}
    for url, name in lists.items():
        for fmt in ("csv", "xlsx"):
            listed = every(api, url)  # before the export, which the audit trail lists once it is written
            response = api.get(url, {"format": fmt})
            assert response.status_code == 200, (url, fmt, response.content)
            assert f'filename="{name}-' in response["Content-Disposition"]
            header, rows = (csv_rows if fmt == "csv" else xlsx_rows)(body_of(response))
            assert len(rows) == len(listed), url
            if listed:
                assert header == list(listed[0]), url
    prosecution = csv_rows(body_of(api.get("/api/v1/prosecutions/", {"format": "csv"})))[1][0]
    assert prosecution["defendant"] == f"person:{person.pk}"
    assert prosecution["case"] == str(case.pk)
    notes = csv_rows(body_of(api.get(f"/api/v1/cases/{case.pk}/notes/", {"format": "csv"})))[1]
    assert notes[0]["body"] == "'-1 note"
    exported = AuditEvent.objects.filter(action="export", object_type="note")
    assert [e.case_id for e in exported] == [case.pk] * 3


def ftm_lines(api, url: str) -> list[dict[str, Any]]:
    response = api.get(url, {"format": "ftm"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].endswith('.ftm.json"')
    return [json.loads(line) for line in body_of(response).decode().splitlines()]


def test_ftm_export_is_valid_followthemoney_and_reimports(api, other, django_capture_on_commit_callbacks, eager,
                                                          tmp_path: Path):
    zhang = created(api, PERSONS, {"name": "Zhang Wei", "names": ["张伟"], "gender": "male",
                                   "birth_date": "1975-03-02", "nationalities": ["CN"],
                                   "identifiers": [{"scheme": "passport", "number": "E12345678", "country": "CN"}],
                                   "addresses": [{"text": "1 Harbour Rd", "country": "HK"}],
                                   "phones": ["+85221234567"], "emails": ["zw@example.com"], "topics": ["sanction"],
                                   "birth_place": "Guilin", "notes": "Seen at Qinzhou port."})
    li = created(api, PERSONS, {"name": "Li Na", "nationalities": ["CN"]})
    harbour = created(api, ORGS, {"name": "Harbour Trading Ltd", "jurisdiction": "HK",
                                  "registration_number": "12345678", "kind": "trader",
                                  "incorporated_on": "2015-06-01", "website": "https://harbour.example.com/about"})
    other_org = created(api, ORGS, {"name": "Some Body", "kind": "other", "jurisdiction": "SE",
                                    "dissolved_on": "2024-12-31"})
    person, org = ({"type": "person", "id": zhang["id"]}, {"type": "organization", "id": harbour["id"]})
    links = [created(api, LINKS, {"kind": "family", "subtype": "spouse", "source": person,
                                  "target": {"type": "person", "id": li["id"]}}),
             created(api, LINKS, {"kind": "ownership", "source": person, "target": org, "share_pct": "25.000",
                                  "start_date": "2020-01-01"}),
             created(api, LINKS, {"kind": "directorship", "subtype": "director", "source": person, "target": org})]
    lines = ftm_lines(api, PERSONS) + ftm_lines(api, ORGS) + ftm_lines(api, LINKS)
    schemata = sorted(line["schema"] for line in lines)
    assert schemata == ["Address", "Company", "Directorship", "Family", "Organization", "Ownership", "Passport",
                        "Person", "Person"]
    ids = [line["id"] for line in lines]
    assert len(set(ids)) == len(ids) and {zhang["id"], harbour["id"], links[0]["id"]} <= set(ids)  # stable: ours
    assert lines == ftm_lines(api, PERSONS) + ftm_lines(api, ORGS) + ftm_lines(api, LINKS)
    for line in lines:  # the package's model keeps every value when it cleans the entity: each one is valid
        proxy = model.get_proxy(line, cleaned=False)
        assert proxy.to_dict()["properties"] == line["properties"], line
    path = tmp_path / "export.ftm.json"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    cli = shutil.which("ftm") or str(Path(sys.executable).with_name("ftm"))
    done = subprocess.run([cli, "validate", "-i", str(path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["id"] for line in done.stdout.splitlines()) == sorted(ids)
    imported(other, path.read_bytes(), "ftm", "ftm-file", "export.ftm.json", django_capture_on_commit_callbacks)
    read_back = ["name", "names", "gender", "birth_date", "birth_place", "nationalities", "identifiers", "addresses",
                 "phones", "emails", "topics", "notes"]
    assert picked(every(other, PERSONS), read_back) == picked([zhang, li], read_back)
    org_fields = ["name", "jurisdiction", "registration_number", "incorporated_on", "dissolved_on", "website"]
    assert picked(every(other, ORGS), org_fields) == picked([harbour, other_org], org_fields)
    # A trader leaves as a Company and comes back a company; the FtM schemata keep `other` and `government`.
    assert {r["name"]: r["kind"] for r in every(other, ORGS)} == {"Harbour Trading Ltd": "company",
                                                                   "Some Body": "other"}
    names = {r["id"]: r["name"] for r in every(other, PERSONS) + every(other, ORGS)}
    got = sorted((link["kind"], names[link["source"]["id"]], names[link["target"]["id"]], link["subtype"],
                  link["share_pct"], link["start_date"]) for link in every(other, LINKS))
    assert got == [("directorship", "Zhang Wei", "Harbour Trading Ltd", "director", None, None),
                   ("family", "Zhang Wei", "Li Na", "spouse", None, None),
                   ("ownership", "Zhang Wei", "Harbour Trading Ltd", "", "25.000", "2020-01-01")]


def test_schema_documents_format_on_every_list(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    lists = {path: op["get"] for path, op in schema["paths"].items()
             if "get" in op and "#/components/schemas/Paginated" in json.dumps(op["get"]["responses"]["200"])
             and not path.endswith(("/errors/", "/timeline/", "/search/"))}  # lists of no one table
    assert "/api/v1/persons/" in lists and "/api/v1/audit/" in lists
    for path, operation in lists.items():
        formats = [p for p in operation["parameters"] if p["name"] == "format"]
        assert len(formats) == 1, path
        expected = ["json", "csv", "xlsx"] + (["ftm"] if path in (PERSONS, ORGS, LINKS) else [])
        assert sorted(formats[0]["schema"]["enum"]) == sorted(expected), path
        assert "text/csv" in operation["responses"]["200"]["content"], path


def test_shipments_with_legs_reimport_into_their_own_agency_unchanged(api, django_capture_on_commit_callbacks, eager):
    legs = [{"from_country": "CN", "to_country": "VN", "mode": "road", "departed_on": "2025-01-02"},
            {"from_country": "VN", "to_country": "US", "mode": "sea", "departed_on": "2025-01-05"}]
    routed = created(api, SHIPMENTS, {"reference": "BL-9", "origin_country": "CN", "destination_country": "US",
                                      "legs": legs, "source": "customs", "source_id": "s9"})
    assert routed["transit_countries"] == ["VN"]
    created(api, SHIPMENTS, {"reference": "BL-10", "origin_country": "CN", "destination_country": "US",
                             "source": "customs", "source_id": "s10"})
    content = body_of(api.get(SHIPMENTS, {"format": "csv"}))
    assert {r["reference"]: r["transit_countries"] for r in csv_rows(content)[1]} == {"BL-9": "VN", "BL-10": ""}
    job = imported(api, content, "shipments", "customs", "shipments.csv", django_capture_on_commit_callbacks)
    assert (job["created"], job["updated"], job["unchanged"]) == (0, 0, 2)
    after = api.get(f"{SHIPMENTS}{routed['id']}/").json()
    assert (after["version"], after["transit_countries"], len(after["legs"])) == (routed["version"], ["VN"], 2)
