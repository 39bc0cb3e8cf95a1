"""Licences from the client's side: fields and their rules, filters, ETags, archive, access, list queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from shipments.models import Licence

from . import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/licences/"


def detail(obj_or_id) -> str:
    return f"{URL}{getattr(obj_or_id, 'pk', obj_or_id)}/"


def ref(entity) -> dict[str, str]:
    return {"type": entity.type, "id": str(entity.pk)}


@pytest.fixture
def holder(world):
    return factories.organization(world.a, "Hunan Antimony Producer Co., Ltd.")


@pytest.fixture
def licence(world, holder):
    return factories.licence(world.a, holder=holder, number="LIC-1", valid_from="2025-01-01", valid_to="2025-12-31")


def post(api, holder_entity, /, **body):
    body = {"number": "EX-2025-0001", "holder": ref(holder_entity), "commodity": "antimony", **body}
    return api.post(URL, body, format="json")


def test_create_returns_every_contract_field(api, world, holder):
    end_user = factories.person(world.a, "Ivan Petrov")
    response = post(api, holder, max_quantity_kg="5000", destination_country="de", end_user=ref(end_user),
                    valid_from="2025-01-01", valid_to="2025-06-30", status="valid")
    assert response.status_code == 201, response.json()
    body = response.json()
    for field in ("id", "created_at", "updated_at", "version", "agency", "number", "holder", "commodity",
                  "max_quantity_kg", "destination_country", "end_user", "valid_from", "valid_to", "status"):
        assert field in body, field
    assert body["agency"] == "SSB" and body["version"] == 1 and response["ETag"] == '"1"'
    assert body["holder"] == {"type": "organization", "id": str(holder.pk),
                              "name": "Hunan Antimony Producer Co., Ltd."}
    assert body["end_user"]["name"] == "Ivan Petrov"
    assert body["commodity"] == "antimony" and body["destination_country"] == "DE"
    assert body["max_quantity_kg"] == "5000.000"
    assert AuditEvent.objects.filter(object_id=body["id"], action="create").exists()


def test_status_defaults_to_valid_and_end_user_is_optional(api, holder):
    body = post(api, holder).json()
    assert body["status"] == "valid" and body["end_user"] is None


@pytest.mark.parametrize("missing", ["number", "holder", "commodity"])
def test_required_fields(api, holder, missing):
    body = {"number": "EX-1", "holder": ref(holder), "commodity": "antimony"}
    del body[missing]
    response = api.post(URL, body, format="json")
    assert response.status_code == 400 and missing in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"commodity": "unobtainium"}, "commodity"),
        ({"max_quantity_kg": -1}, "max_quantity_kg"),
        ({"max_quantity_kg": "much"}, "max_quantity_kg"),
        ({"destination_country": "XX"}, "destination_country"),
        ({"valid_from": "2025-06-01", "valid_to": "2025-05-31"}, "valid_to"),
        ({"valid_from": "1 June"}, "valid_from"),
        ({"status": "lapsed"}, "status"),
        ({"holder": None}, "holder"),
        ({"holder": {"type": "person"}}, "holder"),
        ({"end_user": {"type": "organization", "id": "00000000-0000-0000-0000-000000000001"}}, "end_user"),
        ({"holder_name": "x"}, "holder_name"),
    ],
)
def test_field_rules(api, holder, body, field):
    response = post(api, holder, **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Licence.objects.exists()


def test_valid_for_a_single_day(api, holder):
    assert post(api, holder, valid_from="2025-06-01", valid_to="2025-06-01").status_code == 201


def test_valid_to_is_checked_against_the_stored_valid_from(api, licence):
    response = api.patch(detail(licence), {"valid_to": "2024-12-31"}, format="json")
    assert response.status_code == 400 and "valid_to" in response.json()


@pytest.mark.parametrize("field", ["holder", "end_user"])
def test_an_entity_of_another_agency_is_a_400_on_that_field(api, world, holder, field):
    foreign = factories.organization(world.b, "Their Company")
    response = post(api, holder, **{field: ref(foreign)})
    assert response.status_code == 400 and list(response.json()) == [field]


def test_number_is_unique_per_agency(api, client_for, world, holder, licence):
    duplicate = post(api, holder, number="LIC-1")
    assert duplicate.status_code == 400 and list(duplicate.json()) == ["number"]
    other = client_for(factories.user(world.b, "investigator", world.b1))
    assert post(other, factories.organization(world.b), number="LIC-1").status_code == 201
    # Saving a licence with its own number is no duplicate; taking another's is.
    assert api.patch(detail(licence), {"number": "LIC-1", "status": "revoked"}, format="json").status_code == 200
    second = post(api, holder, number="LIC-2").json()
    taken = api.patch(detail(second["id"]), {"number": "LIC-1"}, format="json")
    assert taken.status_code == 400 and "number" in taken.json()


def test_read_only_fields_are_ignored(api, holder):
    body = post(api, holder, agency="ASB", version=7).json()
    assert body["agency"] == "SSB" and body["version"] == 1


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
def licences(world, holder):
    other_holder = factories.person(world.a, "Zhang Wei")
    factories.licence(world.a, holder=holder, number="L-SB-2025", commodity="antimony",
                      valid_from="2025-01-01", valid_to="2025-12-31")
    factories.licence(world.a, holder=holder, number="L-GA-2024", commodity="gallium", status="expired",
                      valid_from="2024-01-01", valid_to="2024-12-31")
    factories.licence(world.a, holder=other_holder, number="L-SB-FAKE", commodity="antimony",
                      status="suspected_forgery", valid_from="2025-06-01")
    factories.licence(world.a, holder=other_holder, number="L-W-OPEN", commodity="tungsten", status="revoked")
    factories.licence(world.b, number="L-THEIRS", commodity="antimony", valid_from="2025-01-01",
                      valid_to="2025-12-31")
    return {"holder": holder, "other_holder": other_holder}


def numbers(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {item["number"] for item in response.json()["results"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"L-SB-2025", "L-GA-2024", "L-SB-FAKE", "L-W-OPEN"}),
        ({"commodity": "antimony"}, {"L-SB-2025", "L-SB-FAKE"}),
        ({"status": "expired"}, {"L-GA-2024"}),
        ({"status": ["revoked", "suspected_forgery"]}, {"L-SB-FAKE", "L-W-OPEN"}),
        # Open-ended validity (no valid_from or valid_to) counts as valid on that side.
        ({"valid_on": "2025-03-01"}, {"L-SB-2025", "L-W-OPEN"}),
        ({"valid_on": "2025-12-31"}, {"L-SB-2025", "L-SB-FAKE", "L-W-OPEN"}),
        ({"valid_on": "2024-01-01"}, {"L-GA-2024", "L-W-OPEN"}),
        ({"valid_on": "2026-01-01"}, {"L-SB-FAKE", "L-W-OPEN"}),
        ({"q": "sb"}, {"L-SB-2025", "L-SB-FAKE"}),
    ],
)
def test_filters(api, licences, params, expected):
    assert numbers(api.get(URL, params)) == expected


def test_holder_filter(api, licences):
    assert numbers(api.get(URL, {"holder": licences["holder"].pk})) == {"L-SB-2025", "L-GA-2024"}
    assert numbers(api.get(URL, {"holder": licences["other_holder"].pk})) == {"L-SB-FAKE", "L-W-OPEN"}


@pytest.mark.parametrize("params", [{"holder": "nope"}, {"valid_on": "soon"}, {"status": "lapsed"},
                                    {"updated_after": "x"}])
def test_bad_filter_values_are_a_400(api, licences, params):
    response = api.get(URL, params)
    assert response.status_code == 400 and set(params) <= set(response.json())


@pytest.mark.parametrize(("ordering", "first"), [("number", "L-GA-2024"), ("-number", "L-W-OPEN"),
                                                 ("valid_to", "L-GA-2024"), ("-created_at", "L-W-OPEN")])
def test_ordering(api, licences, ordering, first):
    assert api.get(URL, {"ordering": ordering}).json()["results"][0]["number"] == first


# --- concurrency, archive, access ----------------------------------------------------------


def test_etag_and_if_match(api, licence):
    assert api.get(detail(licence))["ETag"] == '"1"'
    ok = api.patch(detail(licence), {"status": "revoked"}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    assert api.patch(detail(licence), {"status": "valid"}, format="json", HTTP_IF_MATCH='"1"').status_code == 412
    assert api.delete(detail(licence), HTTP_IF_MATCH='"1"').status_code == 412
    licence.refresh_from_db()
    assert licence.status == "revoked" and licence.version == 2 and not licence.archived


def test_delete_archives(api, client_for, supervisor, licence):
    assert api.delete(detail(licence)).status_code == 204
    licence.refresh_from_db()
    assert licence.archived
    assert AuditEvent.objects.filter(object_id=str(licence.pk), action="archive").exists()
    assert numbers(api.get(URL)) == set()
    assert numbers(client_for(supervisor).get(URL, {"include_archived": "true"})) == {"LIC-1"}


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("analyst", 403), ("auditor", 403),
                                                ("investigator", 201), ("agency_admin", 201)])
def test_who_may_create(client_for, world, holder, role, expected):
    assert post(client_for(factories.user(world.a, role, world.a1)), holder).status_code == expected


def test_readers_may_read_but_not_change(client_for, world, licence):
    viewer = client_for(factories.user(world.a, "viewer", world.a2))
    assert viewer.get(detail(licence)).status_code == 200
    assert viewer.patch(detail(licence), {"status": "revoked"}, format="json").status_code == 403
    assert viewer.delete(detail(licence)).status_code == 403


def test_another_agencys_licence_is_404(client_for, world, licence):
    other = client_for(factories.user(world.b, "supervisor", world.b1))
    assert other.get(detail(licence)).status_code == 404
    assert other.patch(detail(licence), {"status": "revoked"}, format="json").status_code == 404
    assert other.delete(detail(licence)).status_code == 404
    assert numbers(other.get(URL)) == set()


def test_a_licence_on_a_shipment_of_a_shared_case_is_visible_read_only(client_for, world, licence):
    case = factories.case(world.a, world.a1)
    factories.shipment(world.a, licence=licence, cases=(case,))
    factories.share(case, world.b, access="read")
    other = client_for(factories.user(world.b, "investigator", world.b1))
    assert other.get(detail(licence)).status_code == 200
    assert numbers(other.get(URL)) == {"LIC-1"}
    assert other.patch(detail(licence), {"status": "revoked"}, format="json").status_code == 403


def test_anonymous_is_401(client_for, licence):
    assert client_for(None).get(URL).status_code == 401


def test_list_queries_do_not_grow_with_page_size(api, world):
    end_user = factories.person(world.a)
    for i in range(25):
        factories.licence(world.a, number=f"L-{i}", end_user=end_user)
    api.get(URL, {"page_size": 2})
    counts = []
    for size in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(URL, {"page_size": size})
        assert len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
