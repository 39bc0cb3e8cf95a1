"""One write path: the same record written through every door (the API, the admin's form, a file import,
an FtM import, a management command, a service call from plain Python) is stored as the same row, with an
audit event of the same shape."""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from entities import services as entity_services
from entities.models import Entity, Person
from imports.services import run_job
from shipments import services as shipment_services
from shipments.models import Shipment

from . import factories
from .test_imports import job_for

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
SOURCE = "paths"

SHIPMENT = {"commodity": "antimony", "hs_code": "811010", "declared_hs_code": "780199",
            "declared_description": "Lead alloy ingots", "quantity_kg": "1200.500", "purity_pct": "99.650",
            "declared_value": "25000.00", "currency": "USD", "origin_country": "CN", "destination_country": "VN",
            "status": "declared"}
SHIPMENT_ROW_FIELDS = ["commodity_id", "hs_code", "declared_hs_code", "declared_description", "quantity_kg",
                       "purity_pct", "declared_value", "currency", "origin_country", "destination_country",
                       "transit_countries", "status", "consignee_id", "source", "version", "archived", "agency_id"]


def _staff(user) -> Client:
    user.is_staff = True
    user.save()
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _shape(event: AuditEvent) -> tuple[str, str, list[str]]:
    """What every create event shares, whatever the door: action, object type and the keys of `changes`, each
    an [old, new] pair."""
    assert all(isinstance(pair, list) and len(pair) == 2 and pair[0] is None for pair in event.changes.values()), \
        event.changes
    return event.action, event.object_type, sorted(event.changes)


def _create_event(obj: Any) -> AuditEvent:
    return AuditEvent.objects.get(object_id=str(obj.pk), action="create")


def _shipment_row(shipment: Shipment) -> dict[str, Any]:
    shipment.refresh_from_db()
    return {name: getattr(shipment, name) for name in SHIPMENT_ROW_FIELDS}


def test_one_shipment_through_every_door_is_one_row_and_one_event_shape(world, investigator, client_for):
    consignee = factories.organization(world.a, "Grand Harvest Trading Ltd", jurisdiction="HK")
    written: dict[str, Shipment] = {}

    # the API
    response = client_for(investigator).post("/api/v1/shipments/", {
        **SHIPMENT, "reference": "BL-1", "source": SOURCE, "source_id": "api",
        "consignee": {"type": "organization", "id": str(consignee.pk)}}, format="json")
    assert response.status_code == 201, response.json()
    written["api"] = Shipment.objects.get(pk=response.json()["id"])

    # the admin's form
    response = _staff(investigator).post("/admin/shipments/shipment/add/", {
        **SHIPMENT, "reference": "BL-1", "source": SOURCE, "source_id": "admin", "consignee": str(consignee.pk),
        "legs-TOTAL_FORMS": "0", "legs-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    written["admin"] = Shipment.objects.get(source_id="admin")

    # a file import (the importer's bulk service), and the same file through the management command
    def shipments_file(source_id: str) -> bytes:
        out = io.StringIO()
        row = {**SHIPMENT, "reference": "BL-1", "source_id": source_id, "consignee": consignee.name,
               "consignee_country": "HK"}
        writer = csv.DictWriter(out, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
        return out.getvalue().encode()

    job = run_job(job_for(world.a, shipments_file("import"), kind="shipments", source=SOURCE, user=investigator).pk)
    assert (job.status, job.created, job.failed_rows) == ("succeeded", 1, 0), job.error
    written["import"] = Shipment.objects.get(source_id="import")

    # a service call from plain Python (a worker, a script)
    written["service"] = shipment_services.shipment_create(agency=world.a, actor=investigator, data={
        **{k: v for k, v in SHIPMENT.items() if k != "commodity"}, "commodity_id": "antimony",
        "quantity_kg": Decimal("1200.5"), "purity_pct": Decimal("99.65"), "declared_value": Decimal("25000"),
        "reference": "BL-1", "source": SOURCE, "source_id": "service", "consignee": consignee})

    rows = {door: _shipment_row(shipment) for door, shipment in written.items()}
    differences = {door: {k: (v, rows["api"][k]) for k, v in row.items() if v != rows["api"][k]}
                   for door, row in rows.items()}
    assert not any(differences.values()), differences
    assert rows["api"]["transit_countries"] == [] and rows["api"]["consignee_id"] == consignee.pk
    shapes = {door: _shape(_create_event(shipment)) for door, shipment in written.items()}
    assert all(shape == shapes["api"] for shape in shapes.values()), shapes
    assert {"legs", "cases"} <= set(shapes["api"][2])


def test_one_shipment_through_the_import_command(world, investigator, tmp_path, client_for):
    consignee = factories.organization(world.a, "Grand Harvest Trading Ltd", jurisdiction="HK")
    response = client_for(investigator).post("/api/v1/shipments/", {
        **SHIPMENT, "reference": "BL-1", "source": SOURCE, "source_id": "api",
        "consignee": {"type": "organization", "id": str(consignee.pk)}}, format="json")
    from_api = Shipment.objects.get(pk=response.json()["id"])
    path = tmp_path / "shipments.csv"
    row = {**SHIPMENT, "reference": "BL-1", "source_id": "command", "consignee": consignee.name,
           "consignee_country": "HK"}
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    call_command("import_file", str(path), kind="shipments", agency="SSB", source=SOURCE,
                 user=investigator.username, sync=True, stdout=io.StringIO())
    from_command = Shipment.objects.get(source_id="command")
    assert _shipment_row(from_command) == _shipment_row(from_api)
    assert _shape(_create_event(from_command)) == _shape(_create_event(from_api))


PERSON = {"name": "Luo Jianguo", "names": ["罗建国"], "birth_date": "1969-03-18", "nationalities": ["CN"],
          "phones": ["+86 138 0013 8000"], "emails": ["luo@example.com"], "gender": "male"}
PERSON_ROW_FIELDS = ["type", "name", "names", "birth_date", "nationalities", "phones", "emails", "gender",
                     "search_text", "name_keys", "version", "archived", "agency_id", "source"]


def _person_row(entity: Entity) -> dict[str, Any]:
    entity.refresh_from_db()
    return {name: getattr(entity, name) for name in PERSON_ROW_FIELDS}


def test_one_person_through_every_door_is_one_row_and_one_event_shape(world, investigator, client_for):
    written: dict[str, Entity] = {}
    response = client_for(investigator).post("/api/v1/persons/", {**PERSON, "source": SOURCE, "source_id": "api"},
                                             format="json")
    assert response.status_code == 201, response.json()
    written["api"] = Entity.objects.get(pk=response.json()["id"])

    response = _staff(investigator).post("/admin/entities/person/add/", {
        "name": PERSON["name"], "names": "罗建国", "birth_date": PERSON["birth_date"], "nationalities": "CN",
        "phones": PERSON["phones"][0], "emails": PERSON["emails"][0], "gender": "male", "source": SOURCE,
        "source_id": "admin", "identifiers": "", "addresses": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    written["admin"] = Entity.objects.get(source_id="admin")

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["source_id", "name", "names", "birth_date", "nationalities", "phones",
                                             "emails", "gender"])
    writer.writeheader()
    writer.writerow({"source_id": "import", "name": PERSON["name"], "names": "罗建国",
                     "birth_date": PERSON["birth_date"], "nationalities": "CN", "phones": PERSON["phones"][0],
                     "emails": PERSON["emails"][0], "gender": "male"})
    job = run_job(job_for(world.a, out.getvalue().encode(), kind="persons", source=SOURCE, user=investigator).pk)
    assert (job.status, job.created) == ("succeeded", 1), job.error
    written["import"] = Entity.objects.get(source_id="import")

    line = {"id": "ftm", "schema": "Person", "properties": {
        "name": [PERSON["name"]], "alias": ["罗建国"], "birthDate": [PERSON["birth_date"]], "nationality": ["cn"],
        "phone": PERSON["phones"], "email": PERSON["emails"], "gender": ["male"]}}
    job = run_job(job_for(world.a, (json.dumps(line, ensure_ascii=False) + "\n").encode(), kind="ftm",
                          source=SOURCE, user=investigator, name="file.ftm.json").pk)
    assert (job.status, job.created) == ("succeeded", 1), job.error
    written["ftm"] = Entity.objects.get(source_id="ftm")

    written["service"] = entity_services.person_create(agency=world.a, actor=investigator, data={
        **PERSON, "birth_date": datetime.date(1969, 3, 18), "phones": ["+8613800138000"],  # parsed, as a door gives
        "source": SOURCE, "source_id": "service"})

    rows = {door: _person_row(entity) for door, entity in written.items()}
    differences = {door: {k: (v, rows["api"][k]) for k, v in row.items() if v != rows["api"][k]}
                   for door, row in rows.items()}
    assert not any(differences.values()), differences
    shapes = {door: _shape(_create_event(entity)) for door, entity in written.items()}
    assert all(shape[:2] == ("create", "person") for shape in shapes.values()), shapes
    # Every door records the fields the record holds; none records fields another door does not.
    assert all(shape == shapes["api"] for shape in shapes.values()), shapes
    assert isinstance(written["service"], Person)
