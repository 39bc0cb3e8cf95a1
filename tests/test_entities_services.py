"""One write path for persons, organisations and links: the same rule, with the same message, through every door
(API, admin, links file, FtM file); a service called from plain Python writes what the API writes; an unchanged
update writes nothing; every write leaves its cross-referencing to the outbox."""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from core import outbox
from entities.models import Entity, Link, Person
from imports.models import ImportRowError
from imports.services import run_job

from . import factories
from .test_imports import job_for

LINK_COLUMNS = ["source_id", "kind", "source", "target", "start_date", "end_date", "share_pct", "amount", "currency"]


@pytest.fixture
def enqueued(monkeypatch):
    """The outbox's rows as the services leave them (the outbox itself is tested with it)."""
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(outbox, "enqueue", lambda task, *, kwargs=None, key="", queue=None: calls.append(
        (task, kwargs or {})))
    return calls


def changed(calls, model: str) -> list[list[str]]:
    return [kwargs["ids"] for task, kwargs in calls if task == outbox.RECORDS_CHANGED and kwargs["model"] == model]


staff = factories.admin_client


def ref(entity) -> dict:
    return {"type": entity.type, "id": str(entity.pk)}


# --- the same bad link through every door ----------------------------------------------------------

# (kind, source, target, other fields, {field: message}): one broken rule each; ends are the keys of `ring`.
BAD_LINKS = [
    ("family", "zhang", "trading", {},
     {"target": "A family link joins two persons. The target is an organisation."}),
    ("employment", "trading", "li", {},
     {"source": "An employment link joins a person (source) to an organisation (target). The source is an "
                "organisation.",
      "target": "An employment link joins a person (source) to an organisation (target). The target is a person."}),
    ("associate", "zhang", "zhang", {}, {"target": "A link cannot join an entity to itself."}),
    ("ownership", "zhang", "trading", {"start_date": "2024-02-01", "end_date": "2024-01-31"},
     {"end_date": "A link cannot end before it starts."}),
    ("family", "zhang", "li", {"share_pct": "50"}, {"share_pct": "Only an ownership link has a share percentage."}),
    ("financing", "zhang", "li", {"amount": "1000"}, {"currency": "An amount needs its currency."}),
]
FTM_SCHEMA: dict[str, tuple[str, str, str] | None] = {"family": ("Family", "person", "relative"), "employment": None,
              "associate": ("Associate", "person", "associate"), "ownership": ("Ownership", "owner", "asset"),
              "financing": ("Payment", "payer", "beneficiary")}
FTM_PROPS = {"start_date": "startDate", "end_date": "endDate", "share_pct": "percentage", "amount": "amount"}


@pytest.fixture
def ring(world):
    return {"zhang": factories.person(world.a, "Zhang Wei", source="reg", source_id="p1"),
            "li": factories.person(world.a, "Li Na", source="reg", source_id="p2"),
            "trading": factories.organization(world.a, "Antimony Trading Co., Ltd.", source="reg", source_id="c1")}


def _through_api(world, ring, client_for, kind, source, target, fields) -> dict[str, list[str]]:
    api = client_for(factories.user(world.a, "analyst", world.a1))
    response = api.post("/api/v1/links/", {"kind": kind, "source": ref(ring[source]), "target": ref(ring[target]),
                                           **fields}, format="json")
    assert response.status_code == 400, response.json()
    return response.json()


def _through_admin(world, ring, kind, source, target, fields) -> dict[str, list[str]]:
    client = staff(factories.user(world.a, "analyst", world.a1))
    form = {"source": str(ring[source].pk), "target": str(ring[target].pk), "kind": kind, "subtype": "",
            "confidence": "probable", "currency": "", "description": "", "provenance_source": "",
            "provenance_id": "", **fields}
    response = client.post("/admin/entities/link/add/", form)
    assert response.status_code == 200
    return {field: list(messages) for field, messages in response.context["adminform"].form.errors.items()}


def _through_links_file(world, ring, kind, source, target, fields) -> dict[str, list[str]]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LINK_COLUMNS)
    writer.writeheader()
    writer.writerow({"source_id": "l1", "kind": kind, "source": ring[source].source_id,
                     "target": ring[target].source_id, **fields})
    job = run_job(job_for(world.a, out.getvalue().encode(), kind="links", source="reg").pk)
    assert job.status == "succeeded" and job.failed_rows == 1, job.error
    errors: dict[str, list[str]] = {}
    for error in ImportRowError.objects.filter(job=job):
        errors.setdefault(error.field, []).append(error.message)
    return errors


def _through_ftm_file(world, ring, kind, source, target, fields) -> dict[str, list[str]] | None:
    if FTM_SCHEMA[kind] is None:
        return None  # FollowTheMoney has no employment interval
    schema, source_prop, target_prop = FTM_SCHEMA[kind]  # type: ignore[misc]  # not None: tested above
    ends = [{"id": key, "schema": "Person" if entity.type == "person" else "Company",
             "properties": {"name": [entity.name]}} for key, entity in ring.items()]
    properties = {source_prop: [source], target_prop: [target], **{FTM_PROPS[k]: [v] for k, v in fields.items()}}
    lines = [*ends, {"id": "l1", "schema": schema, "properties": properties}]
    job = run_job(job_for(world.b, "\n".join(json.dumps(line) for line in lines).encode(), kind="ftm",
                          source="ftm").pk)
    assert job.status == "succeeded" and job.failed_rows == 1, job.error
    by_prop = {source_prop: "source", target_prop: "target", **{v: k for k, v in FTM_PROPS.items()}}
    errors: dict[str, list[str]] = {}
    for error in ImportRowError.objects.filter(job=job):  # the line's properties, as the link's fields
        errors.setdefault(by_prop.get(error.field, error.field), []).append(error.message)
    return errors


@pytest.mark.parametrize(("kind", "source", "target", "fields", "expected"), BAD_LINKS)
def test_a_bad_link_gets_the_same_message_through_every_door(world, ring, client_for, kind, source, target,
                                                             fields, expected):
    wanted = {field: [message] for field, message in expected.items()}
    assert _through_api(world, ring, client_for, kind, source, target, fields) == wanted
    assert _through_admin(world, ring, kind, source, target, fields) == wanted
    assert _through_links_file(world, ring, kind, source, target, fields) == wanted
    ftm = _through_ftm_file(world, ring, kind, source, target, fields)
    assert ftm is None or ftm == wanted
    assert not Link.objects.exists()


def test_a_taken_source_id_reads_the_same_in_the_api_and_the_admin(world, api, investigator):
    factories.person(world.a, "Zhang Wei", source="reg", source_id="p1")
    response = api.post("/api/v1/persons/", {"name": "Li Na", "source": "reg", "source_id": "p1"}, format="json")
    assert response.status_code == 400
    form = {"name": "Li Na", "names": "", "gender": "", "birth_place": "", "nationalities": "", "identifiers": "[]",
            "addresses": "[]", "phones": "", "emails": "", "notes": "", "source": "reg", "source_id": "p1"}
    page = staff(investigator).post("/admin/entities/person/add/", form)
    assert page.status_code == 200
    assert page.context["adminform"].form.errors["source_id"] == response.json()["source_id"]
    assert Person.objects.count() == 1


def test_dissolution_before_incorporation_reads_the_same_in_the_api_and_the_admin(world, api, investigator):
    dates = {"incorporated_on": "2020-05-01", "dissolved_on": "2020-04-30"}
    response = api.post("/api/v1/organizations/", {"name": "Grey Ore", **dates}, format="json")
    assert response.status_code == 400
    form = {"name": "Grey Ore", "names": "", "kind": "company", "jurisdiction": "", "registration_number": "",
            "website": "", "identifiers": "[]", "addresses": "[]", "phones": "", "emails": "", "notes": "",
            "source": "", "source_id": "", **dates}
    page = staff(investigator).post("/admin/entities/organization/add/", form)
    assert page.status_code == 200
    assert page.context["adminform"].form.errors == response.json() == {
        "dissolved_on": ["An organisation cannot be dissolved before it was incorporated."]}


# --- a service from plain Python writes what the API writes ----------------------------------------

STORED_BY_BOTH = ("id", "created_at", "updated_at")


def _row(obj) -> dict:
    return {f.attname: getattr(type(obj).objects.get(pk=obj.pk), f.attname) for f in obj._meta.concrete_fields
            if f.attname not in STORED_BY_BOTH}


def _event(obj, action: str) -> dict:
    event = AuditEvent.objects.get(object_id=str(obj.pk), action=action)
    return {"object_type": event.object_type, "actor": event.actor, "agency": event.agency_code,
            "case_id": event.case_id, "changes": event.changes}


def test_a_person_written_by_the_service_is_the_one_the_api_writes(world, api, investigator, enqueued):
    from entities import services

    body = {"name": "Zhang  Wei", "names": ["张伟"], "gender": "M", "birth_date": "1975-04-02",
            "nationalities": ["cn"], "phones": ["+86 138 0013 8000"], "emails": ["ZW@example.cn"],
            "identifiers": [{"scheme": "passport", "number": "E 1234 5678", "country": "CN"}],
            "addresses": [{"text": "12 Jinfeng Rd", "country": "CN"}], "notes": "brother"}
    through_api = Person.objects.get(pk=api.post("/api/v1/persons/", body, format="json").json()["id"])
    # the same person as a script holds it: values already parsed, a date as text
    data = {"name": "Zhang Wei", "names": ["张伟"], "gender": "male", "birth_date": "1975-04-02",
            "nationalities": ["CN"], "phones": ["+8613800138000"], "emails": ["zw@example.cn"],
            "identifiers": [{"scheme": "passport", "number": "E12345678", "country": "CN"}],
            "addresses": [{"text": "12 Jinfeng Rd", "country": "CN"}], "notes": "brother"}
    by_service = services.person_create(agency=world.a, actor=investigator, data=data)
    assert isinstance(by_service, Person) and by_service.birth_date == datetime.date(1975, 4, 2)
    assert _row(by_service) == _row(through_api)
    assert by_service.search_text and by_service.name_keys and by_service.identifier_numbers == ["E12345678"]
    assert _event(by_service, "create") == _event(through_api, "create")
    assert changed(enqueued, "entities.person") == [[str(through_api.pk)], [str(by_service.pk)]]

    # and an update: the same change, the same event
    api.patch(f"/api/v1/persons/{through_api.pk}/", {"birth_place": "Hechi", "names": ["张伟", "Chang Wei"]},
              format="json")
    services.entity_update(entity=Entity.objects.get(pk=by_service.pk), actor=investigator,
                           data={"birth_place": "Hechi", "names": ["张伟", "Chang Wei"]})
    assert _row(by_service) == _row(through_api) and Person.objects.get(pk=by_service.pk).version == 2
    assert _event(by_service, "update") == _event(through_api, "update")
    assert "search_text" in _event(by_service, "update")["changes"]


def test_a_link_written_by_the_service_is_the_one_the_api_writes(world, ring, client_for, enqueued):
    from entities import services

    analyst = factories.user(world.a, "analyst", world.a1)
    api = client_for(analyst)
    body = {"kind": "financing", "subtype": "Payment", "source": ref(ring["trading"]), "target": ref(ring["zhang"]),
            "amount": "250000", "currency": "usd", "start_date": "2024-01-31", "confidence": "confirmed"}
    response = api.post("/api/v1/links/", body, format="json")
    assert response.status_code == 201, response.json()
    through_api = Link.objects.get(pk=response.json()["id"])
    by_service = services.link_create(agency=world.a, actor=analyst, data={
        "kind": "financing", "subtype": "payment", "source": ring["trading"], "target": ring["zhang"],
        "amount": Decimal("250000"), "currency": "USD", "start_date": datetime.date(2024, 1, 31),
        "confidence": "confirmed"})
    assert by_service.amount == Decimal("250000.00")
    assert _row(by_service) == _row(through_api)
    assert _event(by_service, "create") == _event(through_api, "create")
    assert changed(enqueued, "entities.link") == [[str(through_api.pk)], [str(by_service.pk)]]


def test_a_service_refuses_what_the_rules_refuse_and_writes_nothing(world, ring, investigator, enqueued):
    from core.rules import RuleViolation
    from entities import services

    with pytest.raises(RuleViolation) as refused:
        services.link_create(agency=world.a, actor=investigator, data={
            "kind": "family", "source": ring["zhang"], "target": ring["trading"], "share_pct": Decimal("10")})
    assert refused.value.errors == {
        "target": ["A family link joins two persons. The target is an organisation."],
        "share_pct": ["Only an ownership link has a share percentage."]}
    foreign = factories.person(world.b, "Foreign")
    with pytest.raises(RuleViolation) as refused:
        services.link_create(agency=world.a, actor=investigator, data={
            "kind": "family", "source": ring["zhang"], "target": foreign})
    assert refused.value.errors == {"target": ["A link joins records of its own agency only."]}
    with pytest.raises(RuleViolation) as refused:
        services.person_create(agency=world.a, actor=investigator, data={
            "name": "Li Na", "source": "reg", "source_id": "p1", "birth_date": "2999-01-01"})
    assert set(refused.value.errors) == {"source_id", "birth_date"}
    with pytest.raises(RuleViolation) as refused:
        services.entity_update(entity=ring["trading"], actor=investigator, data={"incorporated_on": "not a date"})
    assert set(refused.value.errors) == {"incorporated_on"}
    with pytest.raises(RuleViolation) as refused:  # what the model cannot hold, from a script that did not parse
        services.link_create(agency=world.a, actor=investigator, data={
            "kind": "romance", "source": ring["zhang"], "target": ring["li"], "currency": "DOLLARS"})
    assert set(refused.value.errors) == {"kind", "currency"}
    with pytest.raises(RuleViolation) as refused:
        services.organization_create(agency=world.a, actor=investigator, data={"name": "", "notes": None})
    assert set(refused.value.errors) == {"name", "notes"}
    with pytest.raises(TypeError):  # a person has no jurisdiction
        services.person_create(agency=world.a, actor=investigator, data={"name": "Li Na", "jurisdiction": "CN"})
    assert not Link.objects.exists() and Entity.objects.count() == 4
    assert not AuditEvent.objects.filter(action__in=["create", "update"]).exists() and enqueued == []


def test_a_link_update_is_checked_against_the_stored_link(world, ring, investigator):
    from core.rules import RuleViolation
    from entities import services

    link = factories.link(world.a, ring["zhang"], ring["trading"], kind="ownership", share_pct=Decimal("51"))
    with pytest.raises(RuleViolation) as refused:
        services.link_update(link=link, actor=investigator, data={"kind": "employment"})
    assert refused.value.errors == {"share_pct": ["Only an ownership link has a share percentage."]}
    assert link.kind == "ownership"  # a refused write leaves the instance as it was
    link.refresh_from_db()
    assert (link.kind, link.version) == ("ownership", 1)
    services.link_update(link=link, actor=investigator, data={"kind": "employment", "share_pct": None})
    link.refresh_from_db()
    assert (link.kind, link.share_pct, link.version) == ("employment", None, 2)


# --- an update that changes nothing ----------------------------------------------------------------


def test_an_unchanged_update_keeps_the_version_and_writes_no_event(world, ring, investigator, enqueued):
    from entities import services

    person = ring["zhang"]
    same = services.entity_update(entity=person, actor=investigator,
                                  data={"name": "Zhang Wei", "source": "reg", "source_id": "p1", "names": []})
    link = factories.link(world.a, ring["zhang"], ring["li"], kind="family", start_date=datetime.date(2020, 1, 1))
    services.link_update(link=link, actor=investigator, data={"kind": "family", "start_date": "2020-01-01"})
    person.refresh_from_db()
    link.refresh_from_db()
    assert same.version == person.version == 1 and link.version == 1
    assert not AuditEvent.objects.filter(action="update").exists() and enqueued == []


def test_an_unchanged_admin_save_keeps_the_version(world, ring, investigator):
    person = ring["li"]
    form = {"name": "Li Na", "names": "", "gender": "", "birth_place": "", "nationalities": "", "identifiers": "[]",
            "addresses": "[]", "phones": "", "emails": "", "notes": "", "source": "reg", "source_id": "p2"}
    response = staff(investigator).post(f"/admin/entities/person/{person.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    person.refresh_from_db()
    assert person.version == 1
    assert not AuditEvent.objects.filter(object_id=str(person.pk), action="update").exists()


# --- every write leaves its cross-referencing to the outbox ----------------------------------------


def test_api_writes_and_archives_tell_the_outbox(world, ring, api, client_for, enqueued):
    pk = api.post("/api/v1/organizations/", {"name": "Grey Ore"}, format="json").json()["id"]
    assert api.patch(f"/api/v1/organizations/{pk}/", {"jurisdiction": "HK"}, format="json").status_code == 200
    assert api.patch(f"/api/v1/organizations/{pk}/", {"jurisdiction": "HK"}, format="json").status_code == 200
    assert api.delete(f"/api/v1/organizations/{pk}/").status_code == 204
    assert changed(enqueued, "entities.organization") == [[pk]] * 3  # the unchanged PATCH tells nothing
    assert AuditEvent.objects.filter(object_id=pk, action="archive").count() == 1
    link = factories.link(world.a, ring["zhang"], ring["li"], kind="family")
    assert api.patch(f"/api/v1/links/{link.pk}/", {"subtype": "spouse"}, format="json").status_code == 200
    assert api.delete(f"/api/v1/links/{link.pk}/").status_code == 204
    assert changed(enqueued, "entities.link") == [[str(link.pk)]] * 2


def test_admin_writes_go_through_the_services(world, ring, investigator, enqueued):
    client = staff(investigator)
    form = {"name": "Luo  Jianhua", "names": "", "gender": "", "birth_place": "", "nationalities": "CN",
            "identifiers": "[]", "addresses": "[]", "phones": "138 0013 8000", "emails": "", "notes": "",
            "source": "", "source_id": ""}
    assert client.post("/admin/entities/person/add/", form).status_code == 302
    person = Person.objects.get(name="Luo Jianhua")
    assert (person.agency, person.phones, person.version) == (world.a, ["+8613800138000"], 1)
    assert person.search_text and AuditEvent.objects.filter(object_id=str(person.pk), action="create").exists()
    response = client.post(f"/admin/entities/person/{person.pk}/change/", {**form, "birth_place": "Lengshuijiang"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.birth_place, person.version) == ("Lengshuijiang", 2)
    link_form = {"source": str(ring["zhang"].pk), "target": str(person.pk), "kind": "family", "subtype": "Cousin",
                 "confidence": "probable", "currency": "", "description": "", "provenance_source": "",
                 "provenance_id": ""}
    assert client.post("/admin/entities/link/add/", link_form).status_code == 302
    link = Link.objects.get()
    assert client.post("/admin/entities/person/", {"action": "archive_selected",
                                                   "_selected_action": [person.pk]}).status_code == 302
    assert client.post("/admin/entities/link/", {"action": "archive_selected",
                                                 "_selected_action": [link.pk]}).status_code == 302
    assert changed(enqueued, "entities.person") == [[str(person.pk)]] * 3
    assert changed(enqueued, "entities.link") == [[str(link.pk)]] * 2
    person.refresh_from_db()
    link.refresh_from_db()
    assert person.archived and link.archived and link.subtype == "cousin"
    assert AuditEvent.objects.filter(object_id=str(person.pk), action="archive").count() == 1


def test_a_race_on_a_links_provenance_is_a_rule_violation(world, ring, investigator, monkeypatch):
    from core.rules import RuleViolation
    from entities import rules, services

    data = {"kind": "family", "source": ring["zhang"], "target": ring["li"], "provenance_source": "reg",
            "provenance_id": "l1"}
    services.link_create(agency=world.a, actor=investigator, data=data)
    monkeypatch.setattr(rules, "check_provenance_free", lambda **kwargs: None)  # as if taken after the check
    with pytest.raises(RuleViolation) as refused:
        services.link_create(agency=world.a, actor=investigator, data=data)
    assert refused.value.errors == {"provenance_id": [rules.PROVENANCE_TAKEN]}
    assert Link.objects.count() == 1


def test_an_organisations_file_row_meets_the_same_rules(world, api):
    content = (b"source_id,name,incorporated_on,dissolved_on\n"
               b"c1,Grey Ore,2020-05-01,2020-04-30\nc2,Silver Peak,2020-05-01,2020-05-01\n")
    job = run_job(job_for(world.a, content, kind="organizations", source="reg").pk)
    assert (job.status, job.created, job.failed_rows) == ("succeeded", 1, 1)
    error = ImportRowError.objects.get(job=job)
    response = api.post("/api/v1/organizations/", {"name": "Grey Ore", "incorporated_on": "2020-05-01",
                                                   "dissolved_on": "2020-04-30"}, format="json")
    assert (error.row, error.field, [error.message]) == (1, "dissolved_on", response.json()["dissolved_on"])


def test_a_superuser_adds_a_person_for_the_agency_they_pick(world, enqueued):
    root = factories.user(None, "agency_admin", is_superuser=True)
    form = {"agency": str(world.b.pk), "name": "Deng Kaiwen", "names": "", "gender": "", "birth_place": "",
            "nationalities": "", "identifiers": "[]", "addresses": "[]", "phones": "", "emails": "", "notes": "",
            "source": "", "source_id": ""}
    assert staff(root).post("/admin/entities/person/add/", form).status_code == 302
    person = Person.objects.get(name="Deng Kaiwen")
    assert person.agency == world.b
    assert AuditEvent.objects.get(object_id=str(person.pk), action="create").agency_code == world.b.code
    assert changed(enqueued, "entities.person") == [[str(person.pk)]]
