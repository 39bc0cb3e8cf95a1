"""The busiest requests' shortcuts, from the client's side: they answer what the general path answers, and they
skip only the work whose outcome is already known.

- A record's plain fields are represented directly (core.api.serializers.PlainRepresentation): the JSON is byte for
  byte DRF's own, for records with every field filled, in details and lists.
- A write asks the database only what the access policy cannot tell without it: a case of the caller's agency they
  found is theirs to change by their role; a record written or created in their agency stays in their reach; a
  case whose unit, lead, members or classification change is checked again (and refused when it would leave it).
"""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from core.api.serializers import PlainRepresentation
from xref.models import IdentityMember

from . import factories

VALID_RIC = "11010519491231002X"


@pytest.fixture
def filled(world, api, investigator):
    """A person, an organisation and a case with every field the API answers filled, linked to each other."""
    person = api.post("/api/v1/persons/", {
        "name": "Zhang Wei", "names": ["张伟", "Chang Wei"], "gender": "male", "birth_date": "1975-04-02",
        "birth_place": "Hechi, Guangxi", "nationalities": ["CN", "VN"],
        "identifiers": [{"scheme": "national_id", "number": VALID_RIC, "country": "CN"}],
        "addresses": [{"text": "12 Jinfeng Rd, Hechi", "country": "CN"}, {"text": "3 Tran Phu, Hanoi"}],
        "phones": ["+86 138 0013 8000"], "emails": ["zw@example.cn"], "notes": "ringleader's brother",
        "source": "registry", "source_id": "P-1", "topics": ["crime"]}, format="json")
    assert person.status_code == 201, person.json()
    organization = api.post("/api/v1/organizations/", {
        "name": "Red River Metals Co., Ltd.", "names": ["红河金属有限公司"], "kind": "company", "jurisdiction": "CN",
        "registration_number": "91350100M000100Y43", "topics": ["sanction"],
        "incorporated_on": "2011-03-01", "dissolved_on": "2020-01-01", "website": "https://redriver.example.cn",
        "identifiers": [{"scheme": "other", "number": "RR-77", "country": ""}],
        "addresses": [{"text": "8 Port Rd, Ningbo", "country": "CN"}], "phones": ["+86 574 8888 0000"],
        "emails": ["sales@redriver.example.cn"], "notes": "front company", "source": "registry",
        "source_id": "O-1"}, format="json")
    assert organization.status_code == 201, organization.json()
    member = factories.user(world.a, "analyst", world.a1)
    case = api.post("/api/v1/cases/", {
        "title": "Gallium through Hanoi", "summary": "Routed through a third country.", "priority": "high",
        "classification": "confidential", "unit": "econ", "lead": investigator.username,
        "members": [member.username], "commodities": ["gallium", "antimony"], "tags": ["gallium", "transit"]},
        format="json")
    assert case.status_code == 201, case.json()
    twin = factories.person(world.a, "Chang Wei")
    cluster = uuid.uuid4()
    IdentityMember.objects.bulk_create([IdentityMember(entity_id=person.json()["id"], cluster=cluster),
                                        IdentityMember(entity=twin, cluster=cluster)])
    for entity in (person.json()["id"], organization.json()["id"]):
        added = api.post(f"/api/v1/cases/{case.json()['id']}/parties/", {
            "entity": {"type": "person" if entity == person.json()["id"] else "organization", "id": entity},
            "role": "suspect"}, format="json")
        assert added.status_code == 201, added.json()
    return {"persons": person.json()["id"], "organizations": organization.json()["id"], "cases": case.json()["id"]}


@pytest.mark.parametrize("resource", ["persons", "organizations", "cases"])
def test_plain_representation_answers_drf_s_own_json(api, filled, resource, monkeypatch):
    urls = [f"/api/v1/{resource}/{filled[resource]}/", f"/api/v1/{resource}/?page_size=10"]
    plain = [api.get(url) for url in urls]
    monkeypatch.setattr(PlainRepresentation, "to_representation", serializers.Serializer.to_representation)
    drf = [api.get(url) for url in urls]
    for ours, theirs in zip(plain, drf, strict=True):
        assert ours.status_code == theirs.status_code == 200, ours.json()
        assert ours.content == theirs.content
    detail = plain[0].json()
    empty = sorted(name for name, value in detail.items() if value in (None, "", [], {}))
    assert empty == (["closed_on"] if resource == "cases" else ["lists"] if resource == "persons"
                     else ["lists", "same_as"])


def _exists_checks(queries):
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT 1 AS "a"')]


def test_a_title_change_of_the_caller_s_case_asks_no_access_question_again(api, world, investigator):
    case = factories.case(world.a, world.a1, lead=investigator)
    with CaptureQueriesContext(connection) as queries:
        response = api.patch(f"/api/v1/cases/{case.pk}/", {"title": "Renamed"}, format="json",
                             HTTP_IF_MATCH=f'"{case.version}"')
    assert response.status_code == 200, response.json()
    assert response.json()["title"] == "Renamed"
    assert _exists_checks(queries) == []


def test_a_person_created_in_the_caller_s_agency_is_not_looked_up_again(api):
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/persons/", {"name": "Li Mei"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["same_as"] == [] and response.json()["cases"] == []
    assert _exists_checks(queries) == []
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "xref_identitymember"')]


def test_moving_a_case_out_of_the_caller_s_reach_is_refused(client_for, world):
    """An investigator who sees a case through their unit (neither its lead nor a member) may not move it to
    another unit: the check after the write runs, and refuses it; nothing changes."""
    investigator = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1)
    response = client_for(investigator).patch(f"/api/v1/cases/{case.pk}/", {"unit": "cyber"}, format="json",
                                              HTTP_IF_MATCH=f'"{case.version}"')
    assert response.status_code == 403, response.json()
    assert response.json()["detail"] == "This change would put the record out of your reach."
    case.refresh_from_db()
    assert case.unit_id == world.a1.pk and case.version == 1


def test_a_case_shared_read_write_is_checked_for_writing(client_for, world):
    """Another agency's case, shared with the caller's read-write, is written; shared read-only, it is not."""
    other = factories.user(world.b, "investigator", world.b1)
    writable = factories.case(world.a, world.a1)
    readable = factories.case(world.a, world.a1)
    factories.share(writable, world.b, access="write")
    factories.share(readable, world.b, access="read")
    api = client_for(other)
    ok = api.patch(f"/api/v1/cases/{writable.pk}/", {"title": "Renamed by ASB"}, format="json")
    refused = api.patch(f"/api/v1/cases/{readable.pk}/", {"title": "Renamed by ASB"}, format="json")
    assert ok.status_code == 200, ok.json()
    assert refused.status_code == 403, refused.json()
