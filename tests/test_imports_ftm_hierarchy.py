"""The FtM import reads a line by the FollowTheMoney schema hierarchy: what a schema extends decides what it
becomes (a person, an organisation, a folded address or identification, a link), and every other schema is
reported on its line as skipped, with the reason. Bad lines keep their values in the errors list."""

from __future__ import annotations

import json

from entities.models import Entity, Link
from imports.services import run_job

from .test_imports import job_for

LINES = [
    {"id": "p1", "schema": "Person", "properties": {"name": ["Wang Fang"], "nationality": ["cn"]}},
    {"id": "p2", "schema": "Person", "properties": {"name": ["Li Na"]}},
    {"id": "gov", "schema": "PublicBody", "properties": {"name": ["Ministry of Mines"], "country": ["la"]}},
    {"id": "org", "schema": "Organization", "properties": {"name": ["Gallium Traders Association"]}},
    {"id": "co", "schema": "Company", "properties": {"name": ["Germanium Export Ltd"],
                                                     "registrationNumber": ["HK-778"]}},
    {"id": "pass", "schema": "Passport", "properties": {"holder": ["p1"], "number": ["E7788990"],
                                                        "country": ["cn"]}},
    {"id": "emp", "schema": "Employment", "properties": {"employee": ["p1"], "employer": ["gov"],
                                                         "role": ["Deputy director"]}},
    {"id": "mem", "schema": "Membership", "properties": {"member": ["p2"], "organization": ["org"]}},
    {"id": "unk", "schema": "UnknownLink", "properties": {"subject": ["p1"], "object": ["p2"]}},
    {"id": "rep", "schema": "Representation", "properties": {"agent": ["p2"], "client": ["co"]}},
    {"id": "debt", "schema": "Debt", "properties": {"debtor": ["co"], "creditor": ["gov"], "amount": ["1000"],
                                                    "currency": ["usd"]}},
    {"id": "ship", "schema": "Vessel", "properties": {"name": ["Ocean Star"]}},
    {"id": "sanc", "schema": "Sanction", "properties": {"entity": ["co"], "program": ["X"]}},
    {"id": "succ", "schema": "Succession", "properties": {"predecessor": ["co"], "successor": ["org"]}},
    {"id": "what", "schema": "Planet", "properties": {"name": ["Mars"]}},
]


def _file(lines: list[dict]) -> bytes:
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()


def test_every_schema_is_read_by_what_it_extends_and_the_rest_is_skipped_with_its_reason(world):
    job = run_job(job_for(world.a, _file(LINES), kind="ftm", source="hier").pk)
    assert job.status == "succeeded", job.error
    entities = {e.source_id: e for e in Entity.objects.filter(source="hier")}
    assert {key: (e.type, getattr(e, "kind", "")) for key, e in entities.items()} == {
        "p1": ("person", ""), "p2": ("person", ""), "gov": ("organization", "government"),
        "org": ("organization", "other"), "co": ("organization", "company")}
    # The Passport line is folded into its holder's identifiers.
    assert entities["p1"].identifiers == [{"scheme": "passport", "number": "E7788990", "country": "CN"}]
    links = {link.provenance_id: (link.kind, link.subtype, link.source_id, link.target_id)
             for link in Link.objects.filter(provenance_source="hier")}
    assert links == {
        "emp": ("employment", "deputy_director", entities["p1"].pk, entities["gov"].pk),
        "mem": ("employment", "member", entities["p2"].pk, entities["org"].pk),
        "unk": ("associate", "unknown", entities["p1"].pk, entities["p2"].pk),
        "rep": ("representation", "", entities["p2"].pk, entities["co"].pk),
        "debt": ("financing", "debt", entities["co"].pk, entities["gov"].pk),
    }
    skipped = {error.row: (error.field, error.message) for error in job.errors.all()}
    assert sorted(skipped) == [12, 13, 14, 15]
    assert skipped[12] == ("schema", "Skipped: a Vessel is not a person or an organisation, the only things this "
                                     "service indexes.")
    assert skipped[13][1].startswith("Skipped: a Sanction is not imported as a record")
    assert skipped[14] == ("schema", "Skipped: one organisation succeeding another has no link kind in this "
                                     "service.")
    assert skipped[15] == ("schema", "'Planet' is not a FollowTheMoney schema.")
    # 5 entities and 5 links created; the passport folded (unchanged); 4 lines skipped.
    assert (job.total_rows, job.created, job.unchanged, job.failed_rows) == (15, 10, 1, 4)


def test_a_bad_ftm_line_keeps_its_values_in_the_errors_list(world, investigator, client_for):
    lines = [{"id": "p1", "schema": "Person", "properties": {"name": ["Wang Fang"], "birthDate": ["1999-13-40"]}},
             {"id": "x", "schema": "Vessel", "properties": {"name": ["Ocean Star"]}}]
    job = run_job(job_for(world.a, _file(lines), kind="ftm", source="bad", user=investigator).pk)
    body = client_for(investigator).get(f"/api/v1/imports/{job.pk}/errors/").json()
    items = body["results"] if isinstance(body, dict) else body
    assert [(item["row"], item["field"], item["values"]) for item in items] == [
        (1, "birth_date", {"id": "p1", "schema": "Person", "properties": json.dumps(lines[0]["properties"])}),
        (2, "schema", {"id": "x", "schema": "Vessel", "properties": json.dumps(lines[1]["properties"])}),
    ]


def test_a_row_a_bulk_service_refuses_keeps_its_values(world, investigator, client_for):
    """A row that passes its fields' checks but that the bulk service refuses (transit countries for a stored
    shipment whose legs give them) is reported with the values the file gave it."""
    api = client_for(investigator)
    legs = [{"from_country": "CN", "to_country": "VN", "mode": "road"},
            {"from_country": "VN", "to_country": "US", "mode": "sea"}]
    created = api.post("/api/v1/shipments/", {"reference": "BL-9", "origin_country": "CN",
                                              "destination_country": "US", "legs": legs, "source": "refs",
                                              "source_id": "s9"}, format="json")
    assert created.status_code == 201, created.content
    csv_file = b"reference,source_id,transit_countries\nBL-9,s9,TH\n"
    job = run_job(job_for(world.a, csv_file, kind="shipments", source="refs", user=investigator).pk)
    assert job.failed_rows == 1
    error = job.errors.get()
    assert (error.row, error.field) == (1, "transit_countries")
    assert error.values == {"reference": "BL-9", "source_id": "s9", "transit_countries": "TH"}
