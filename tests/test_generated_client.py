"""A client generated from the published schema works against the server (API.md § Basics: the schema agrees with
the API), as an agency would use it.

`openapi-python-client` (the venv's) generates a client from `/api/v1/schema/` as served by a live server (gunicorn,
with a Celery worker for the import), into a temporary directory, with no warning about the schema; the test then
imports it and runs a session through it: sign in, list and filter, create a person, an organisation, a shipment
with legs, a case with a party and a note, upload an import and follow it to its end, read the timeline, the graph
and search. Every answer is the typed model the schema names, with each value checked, and none carries a property
the schema does not declare.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from django.conf import settings
from django.db import connection

from accounts.models import ApiToken
from cases.models import Case

from . import factories
from .web_server import WebServer, web_server
from .worker import worker_process

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "agency_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
CONFIG = {
    "package_name_override": PACKAGE,
    "post_hooks": [],  # no formatting of the generated code: nothing of it is read but by the import
    "http_timeout": 60,  # the first schema a fresh server builds takes a few seconds
    # The evidence download answers the file's own type (`*/*`): the generator knows it as a binary body.
    "content_type_overrides": {"*/*": "application/octet-stream"},
}


@pytest.fixture
def server() -> Iterator[WebServer]:
    """gunicorn and a Celery worker on the test's database and queues of their own."""
    with worker_process() as worker, web_server(DATABASE_NAME=connection.settings_dict["NAME"],
                                                REDIS_URL=settings.REDIS_URL,
                                                CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
                                                TASK_QUEUE_PREFIX=worker.prefix) as web:
        yield web


@pytest.fixture
def generated(server: WebServer, tmp_path: Path) -> Iterator[Any]:
    """The client package generated from the served schema, imported; gone from `sys.modules` afterwards."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    done = subprocess.run(
        [str(GENERATOR), "generate", "--url", f"{server.base}/api/v1/schema/", "--meta", "none", "--config",
         str(config), "--output-path", str(tmp_path / PACKAGE), "--fail-on-warning"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # The only line it prints when the schema gives it nothing to skip, warn about or give up on.
    assert output.strip() == f"Generating {tmp_path / PACKAGE}", output
    sys.path.insert(0, str(tmp_path))
    try:
        yield Generated(importlib.import_module(PACKAGE))
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class Generated:
    """The generated package: `api("cases.cases_list")` is an operation's module, `models` its models."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")

    def api(self, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{name}")


def call(operation: Any, expected: int, /, *args: Any, **kwargs: Any) -> Any:
    """An operation's typed result, its status the one expected, every property of it one the schema declares."""
    response = operation.sync_detailed(*args, **kwargs)
    assert response.status_code == expected, response.content[:1000]
    assert_declared(response.parsed)
    return response.parsed


def assert_declared(value: Any, path: str = "$") -> None:
    """No model in `value` holds a property its schema does not declare (`additional_properties`), save the
    free-form ones (a map such as an event's changes) that declare none."""
    if attrs.has(type(value)):
        declared = [field.name for field in attrs.fields(type(value)) if field.name != "additional_properties"]
        if declared:
            assert value.additional_properties == {}, (path, type(value).__name__, value.additional_properties)
        for name in declared:
            assert_declared(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_declared(item, f"{path}[{index}]")


def test_a_generated_client_runs_a_session(world, server, generated):
    m, api = generated.models, generated.api
    investigator = factories.user(world.a, "investigator", world.a1, username="desk-officer")
    licensed_org = factories.organization(world.a, "Licensed Metals Co")
    factories.shipment(world.a, reference="BL-LICENSED", licence=factories.licence(world.a, licensed_org))
    factories.shipment(world.a, reference="BL-BARE")
    investigating = factories.case(world.a, world.a1, lead=investigator, status="investigating", priority="high",
                                   title="Gallium through Haiphong")
    factories.case(world.a, world.a1, lead=investigator, status="open", priority="high", title="Open lead")
    factories.case(world.a, world.a1, lead=investigator, status="investigating", priority="low", title="Low one")
    factories.case(world.b, world.b1, status="investigating", priority="high", title="Another agency's")

    # Sign in: a token for the name and password, shown once.
    anonymous = generated.package.Client(base_url=server.base, raise_on_unexpected_status=True)
    signed_in = call(api("auth.auth_tokens_create"), 201, client=anonymous,
                     body=m.TokenRequestRequest(username="desk-officer", password=factories.PASSWORD))
    assert isinstance(signed_in, m.TokenResponse)
    assert ApiToken.objects.get(user=investigator).expires_at == signed_in.expires_at
    client = generated.package.AuthenticatedClient(base_url=server.base, token=signed_in.token,
                                                   prefix="Token", raise_on_unexpected_status=True)
    me = call(api("auth.auth_me_retrieve"), 200, client=client)
    assert (me.username, me.agency, me.unit, me.role, me.clearance) == (
        "desk-officer", "SSB", "econ", "investigator", "secret")

    # Lists and filters, the typed way: a list of enums, a boolean.
    cases = call(api("cases.cases_list"), 200, client=client, ordering=[m.CasesListOrderingItem.TITLE])
    assert [c.title for c in cases.results] == ["Gallium through Haiphong", "Low one", "Open lead"]
    assert (cases.count, cases.next_, cases.previous) == (3, None, None)
    filtered = call(api("cases.cases_list"), 200, client=client, status=[m.CasesListStatusItem.INVESTIGATING],
                    priority=[m.CasesListPriorityItem.HIGH])
    assert [(c.id, c.reference, c.status, c.priority) for c in filtered.results] == [
        (investigating.pk, investigating.reference, m.CaseStatusEnum.INVESTIGATING, m.PriorityEnum.HIGH)]
    licensed = call(api("shipments.shipments_list"), 200, client=client, has_licence=True)
    unlicensed = call(api("shipments.shipments_list"), 200, client=client, has_licence=False)
    assert [s.reference for s in licensed.results] == ["BL-LICENSED"]
    assert [s.reference for s in unlicensed.results] == ["BL-BARE"]

    # A person, an organisation, a shipment with two legs.
    person = call(api("persons.persons_create"), 201, client=client, body=m.PersonRequest(
        name="Zhang Wei", names=["张伟"], nationalities=["CN"], birth_date=dt.date(1980, 1, 2),
        identifiers=[m.IdentifierRequest(scheme=m.SchemeEnum.PASSPORT, number="E1234567", country="CN")]))
    assert isinstance(person, m.Person)
    assert (person.name, person.names, person.nationalities, person.birth_date, person.agency, person.version) == (
        "Zhang Wei", ["张伟"], ["CN"], dt.date(1980, 1, 2), "SSB", 1)
    assert [(i.scheme, i.number, i.country) for i in person.identifiers] == [(m.SchemeEnum.PASSPORT, "E1234567", "CN")]
    organization = call(api("organizations.organizations_create"), 201, client=client, body=m.OrganizationRequest(
        name="Lucky Metals Trading Ltd", kind=m.OrganizationKindEnum.TRADER, jurisdiction="HK",
        registration_number="HK-778899"))
    assert (organization.name, organization.kind, organization.jurisdiction, organization.registration_number) == (
        "Lucky Metals Trading Ltd", m.OrganizationKindEnum.TRADER, "HK", "HK778899")
    shipment = call(api("shipments.shipments_create"), 201, client=client, body=m.ShipmentRequest(
        reference="BL-CLIENT-1", commodity="antimony", hs_code="8110.10", quantity_kg="1200.5", origin_country="CN",
        destination_country="US",
        consignee=m.ShipmentRequestConsigneeType0(type_=m.ShipmentRequestConsigneeType0Type.ORGANIZATION,
                                                  id=organization.id),
        legs=[m.LegRequest(from_country="CN", from_port="Shanghai", to_country="VN", to_port="Haiphong",
                           mode=m.LegModeEnum.SEA, departed_on=dt.date(2026, 3, 1)),
              m.LegRequest(from_country="VN", to_country="US", mode=m.LegModeEnum.AIR,
                           departed_on=dt.date(2026, 3, 10))]))
    assert (shipment.reference, shipment.hs_code, shipment.quantity_kg, shipment.transit_countries) == (
        "BL-CLIENT-1", "811010", "1200.500", ["VN"])
    assert [(leg.from_country, leg.to_country, leg.mode) for leg in shipment.legs] == [
        ("CN", "VN", m.LegModeEnum.SEA), ("VN", "US", m.LegModeEnum.AIR)]
    assert (shipment.consignee.type_, shipment.consignee.id, shipment.consignee.name) == (
        m.ShipmentConsigneeType0Type.ORGANIZATION, organization.id, "Lucky Metals Trading Ltd")
    assert (shipment.status, shipment.licence, shipment.consignor) == (m.ShipmentStatusEnum.DECLARED, None, None)

    # A case, the person a party to it, a note.
    case = call(api("cases.cases_create"), 201, client=client, body=m.CaseRequest(
        title="Antimony via Haiphong", priority=m.PriorityEnum.CRITICAL, commodities=["antimony"], tags=["transit"]))
    assert (case.title, case.priority, case.status, case.commodities, case.tags, case.lead, case.unit) == (
        "Antimony via Haiphong", m.PriorityEnum.CRITICAL, m.CaseStatusEnum.OPEN, ["antimony"], ["transit"],
        "desk-officer", "econ")
    assert case.reference == Case.objects.get(pk=case.id).reference
    party = call(api("cases.cases_parties_create"), 201, case.id, client=client, body=m.PartyRequest(
        entity=m.PartyRequestEntity(type_=m.PartyRequestEntityType.PERSON, id=person.id), role=m.RoleEnum.SUSPECT))
    assert (party.case, party.entity.id, party.entity.name, party.role, party.custody_status) == (
        case.id, person.id, "Zhang Wei", m.RoleEnum.SUSPECT, m.CustodyStatusEnum.AT_LARGE)
    note = call(api("cases.cases_notes_create"), 201, case.id, client=client,
                body=m.NoteRequest(body="Spoke to the port authority."))
    assert (note.case, note.body, note.author) == (case.id, "Spoke to the port authority.", "desk-officer")

    # An import: a CSV uploaded as multipart, followed until it has finished.
    upload = generated.types.File(payload=io.BytesIO(b"source_id,name,nationalities,birth_date\n"
                                                     b"reg-1,Li Na,CN,1975-05-05\n"
                                                     b"reg-2,Tran Van An,VN;CN,not-a-date\n"),
                                  file_name="people.csv", mime_type="text/csv")
    job = call(api("imports.imports_create"), 202, client=client, body=m.ImportJobRequest(
        kind=m.ImportJobKindEnum.PERSONS, file=upload, mode=m.ImportJobModeEnum.PARTIAL, source="registry"))
    assert (job.status, job.kind, job.mode, job.source, job.created_by) == (
        m.ImportJobStatusEnum.QUEUED, m.ImportJobKindEnum.PERSONS, m.ImportJobModeEnum.PARTIAL, "registry",
        "desk-officer")
    deadline = time.monotonic() + 60
    while job.status in (m.ImportJobStatusEnum.QUEUED, m.ImportJobStatusEnum.RUNNING):
        assert time.monotonic() < deadline, "the import did not finish in 60 s"
        time.sleep(0.2)
        job = call(api("imports.imports_retrieve"), 200, job.id, client=client)
    assert (job.status, job.total_rows, job.processed_rows, job.created, job.updated, job.unchanged,
            job.failed_rows) == (m.ImportJobStatusEnum.SUCCEEDED, 2, 2, 1, 0, 0, 1)
    errors = call(api("imports.imports_errors_retrieve"), 200, job.id, client=client)
    assert [(e.row, e.field) for e in errors.results] == [(2, "birth_date")]
    imported = call(api("persons.persons_list"), 200, client=client, source="registry")
    assert [(p.name, p.source_id, p.birth_date) for p in imported.results] == [("Li Na", "reg-1", dt.date(1975, 5, 5))]

    # The timeline: events and notes, newest first, each its own type.
    timeline = call(api("cases.cases_timeline_list"), 200, case.id, client=client)
    entries = timeline.results
    assert timeline.count == len(entries) == 4
    assert [entry.at for entry in entries] == sorted((entry.at for entry in entries), reverse=True)
    notes = [entry for entry in entries if isinstance(entry, m.TimelineNote)]
    events = [entry for entry in entries if isinstance(entry, m.TimelineEvent)]
    assert [(n.type_, n.body, n.actor, n.object_id) for n in notes] == [
        (m.TimelineNoteTypeEnum.NOTE, "Spoke to the port authority.", "desk-officer", str(note.id))]
    assert sorted((e.action, e.object_type, e.object_id) for e in events) == sorted([
        ("create", "case", str(case.id)), ("create", "caseparty", str(party.id)), ("create", "note", str(note.id))])
    created = next(e for e in events if e.object_type == "case")
    assert (created.type_, created.actor) == (m.TimelineEventTypeEnum.EVENT, "desk-officer")
    assert created.changes["title"] == [None, "Antimony via Haiphong"]

    # The graph of the case, and of the organisation; search.
    graph = call(api("cases.cases_graph"), 200, case.id, client=client)
    assert sorted((n.type_, n.id, n.label) for n in graph.nodes) == sorted([
        (m.RecordTypeEnum.CASE, case.id, f"{case.reference} Antimony via Haiphong"),
        (m.RecordTypeEnum.PERSON, person.id, "Zhang Wei")])
    assert [(e.source, e.target, e.kind, e.label) for e in graph.edges] == [(person.id, case.id, "party", "suspect")]
    around = call(api("graph.graph"), 200, client=client, entity=f"organization:{organization.id}", depth=1)
    assert sorted((n.type_, n.id, n.label) for n in around.nodes) == sorted([
        (m.RecordTypeEnum.ORGANIZATION, organization.id, "Lucky Metals Trading Ltd"),
        (m.RecordTypeEnum.SHIPMENT, shipment.id, "BL-CLIENT-1")])
    assert [(e.source, e.target, e.kind, e.label) for e in around.edges] == [
        (organization.id, shipment.id, "consignee", "consignee")]
    found = call(api("search.search"), 200, client=client, q="zhang wei")
    assert [(hit.type_, hit.id, hit.label, hit.score) for hit in found.results] == [
        (m.RecordTypeEnum.PERSON, person.id, "Zhang Wei", 1.0)]
