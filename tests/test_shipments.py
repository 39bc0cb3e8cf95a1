"""Shipments from the client's side: fields and their rules, legs and transit countries, parties, licence,
cases, every filter, ETags, archive, access across agencies and constant list queries."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from shipments.models import Shipment, ShipmentLeg

from . import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/shipments/"

ROUTE = [
    {"from_country": "CN", "from_port": "Qinzhou", "to_country": "VN", "to_port": "Hai Phong", "mode": "road",
     "departed_on": "2025-03-01", "arrived_on": "2025-03-03"},
    {"from_country": "VN", "to_country": "TH", "mode": "road", "carrier": "Mekong Haulage",
     "departed_on": "2025-03-05", "arrived_on": "2025-03-07"},
    {"from_country": "TH", "from_port": "Laem Chabang", "to_country": "US", "to_port": "Long Beach", "mode": "sea",
     "vessel": "Ever Grey", "container": "MSCU1234567", "departed_on": "2025-03-10", "arrived_on": "2025-04-02"},
]


def detail(obj_or_id) -> str:
    return f"{URL}{getattr(obj_or_id, 'pk', obj_or_id)}/"


def ref(entity) -> dict[str, str]:
    return {"type": entity.type, "id": str(entity.pk)}


@pytest.fixture
def org(world):
    return factories.organization(world.a, "Grey Ore Trading Co., Ltd.")


@pytest.fixture
def shipment(world):
    return factories.shipment(world.a, reference="BL-1", commodity_id="antimony", quantity_kg="1000",
                              origin_country="CN", destination_country="US")


def post(api, **body):
    body.setdefault("reference", "BL-NEW")
    return api.post(URL, body, format="json")


# --- creating and the fields ---------------------------------------------------------------


def test_create_returns_every_contract_field(api, world, org):
    person = factories.person(world.a, "Zhang Wei")
    response = post(api, reference="BL-2025-001", commodity="antimony", hs_code="8110.10", declared_hs_code="2617 10",
                    declared_description="zinc ore", quantity_kg=25000.5, purity_pct="99.65", declared_value="120000",
                    currency="usd", origin_country="cn", destination_country="US", legs=ROUTE,
                    consignor=ref(org), consignee=ref(person), status="in_transit", source="customs",
                    source_id="X-1")
    assert response.status_code == 201, response.json()
    body = response.json()
    for field in ("id", "created_at", "updated_at", "version", "agency", "reference", "commodity", "hs_code",
                  "declared_hs_code", "declared_description", "quantity_kg", "purity_pct", "declared_value",
                  "currency", "origin_country", "destination_country", "legs", "transit_countries", "consignor",
                  "consignee", "notify_party", "ordering_party", "licence", "status", "seized_on",
                  "seized_quantity_kg", "seizure_location", "cases", "source", "source_id"):
        assert field in body, field
    assert body["agency"] == "SSB" and body["version"] == 1 and response["ETag"] == '"1"'
    assert body["hs_code"] == "811010" and body["declared_hs_code"] == "261710"
    assert body["quantity_kg"] == "25000.500" and body["purity_pct"] == "99.650"
    assert body["currency"] == "USD" and body["origin_country"] == "CN"
    assert body["consignor"] == {"type": "organization", "id": str(org.pk), "name": "Grey Ore Trading Co., Ltd."}
    assert body["consignee"]["type"] == "person" and body["consignee"]["name"] == "Zhang Wei"
    assert body["notify_party"] is None and body["licence"] is None and body["cases"] == []
    assert body["commodity"] == "antimony"


def test_transit_countries_are_derived_from_the_ordered_legs(api):
    response = post(api, origin_country="CN", destination_country="US", legs=ROUTE)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["transit_countries"] == ["VN", "TH"]
    assert [(leg["from_country"], leg["to_country"]) for leg in body["legs"]] == [("CN", "VN"), ("VN", "TH"),
                                                                                   ("TH", "US")]
    assert body["legs"][2]["vessel"] == "Ever Grey" and body["legs"][0]["departed_on"] == "2025-03-01"
    shipment = Shipment.objects.get(pk=body["id"])
    assert shipment.departed_on == datetime.date(2025, 3, 1)
    assert list(shipment.legs.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    assert set(body["legs"][0]) == {"from_country", "from_port", "to_country", "to_port", "mode", "carrier",
                                    "vessel", "container", "departed_on", "arrived_on"}


def test_transit_countries_sent_by_the_client_are_ignored_beside_legs(api):
    response = post(api, origin_country="CN", destination_country="US", legs=ROUTE, transit_countries=["KZ"])
    assert response.status_code == 201
    assert response.json()["transit_countries"] == ["VN", "TH"]


def test_transit_countries_sent_without_legs_are_ignored(api):
    # Read-only (API.md § Shipments): a list a client sends is ignored, as any read-only field is; before
    # issue 8 it was stored as given when there were no legs.
    response = post(api, origin_country="CN", destination_country="US", transit_countries=["vn", "TH", "VN"])
    assert response.status_code == 201, response.json()
    assert response.json()["transit_countries"] == [] and response.json()["legs"] == []
    ignored = post(api, reference="BL-2", transit_countries=["XX"])
    assert ignored.status_code == 201 and ignored.json()["transit_countries"] == []


def test_written_legs_replace_the_old_ones_wholesale(api, world):
    shipment = factories.shipment(world.a, origin_country="CN", destination_country="US", legs=tuple(ROUTE))
    old_ids = set(shipment.legs.values_list("pk", flat=True))
    new_legs = [{"from_country": "CN", "to_country": "MY", "mode": "sea", "departed_on": "2025-05-01"},
                {"from_country": "MY", "to_country": "US", "mode": "air"}]
    response = api.patch(detail(shipment), {"legs": new_legs}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["transit_countries"] == ["MY"] and [leg["to_country"] for leg in body["legs"]] == ["MY", "US"]
    assert not ShipmentLeg.objects.filter(pk__in=old_ids).exists()
    assert ShipmentLeg.objects.filter(shipment=shipment).count() == 2
    shipment.refresh_from_db()
    assert shipment.departed_on == datetime.date(2025, 5, 1) and shipment.version == 2


def test_a_patch_without_legs_keeps_them_and_rederives_from_them(api, world):
    shipment = factories.shipment(world.a, origin_country="CN", destination_country="US", legs=tuple(ROUTE))
    response = api.patch(detail(shipment), {"destination_country": "TH", "transit_countries": ["KZ"]},
                         format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert len(body["legs"]) == 3
    assert body["transit_countries"] == ["VN", "US"]  # TH is now the destination; the client's list is ignored


def test_empty_legs_clear_the_route(api, world):
    shipment = factories.shipment(world.a, origin_country="CN", destination_country="US", legs=tuple(ROUTE))
    response = api.patch(detail(shipment), {"legs": []}, format="json")
    assert response.status_code == 200
    assert response.json()["legs"] == [] and response.json()["transit_countries"] == []
    shipment.refresh_from_db()
    assert shipment.departed_on is None


def test_a_change_to_a_leg_alone_is_a_change_audited_with_the_shipment(api, world):
    shipment = factories.shipment(world.a, origin_country="CN", destination_country="US", legs=tuple(ROUTE))
    legs = [dict(leg) for leg in ROUTE]
    legs[1]["carrier"] = "Other Haulage"
    response = api.patch(detail(shipment), {"legs": legs}, format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 2 and response.json()["legs"][1]["carrier"] == "Other Haulage"
    event = AuditEvent.objects.filter(object_id=str(shipment.pk), action="update").get()
    assert "legs" in event.changes
    # The same legs again change nothing: same version, no event.
    again = api.patch(detail(shipment), {"legs": legs}, format="json")
    assert again.json()["version"] == 2
    assert AuditEvent.objects.filter(object_id=str(shipment.pk), action="update").count() == 1


def test_create_is_audited_with_its_legs(api):
    body = post(api, origin_country="CN", destination_country="US", legs=ROUTE).json()
    event = AuditEvent.objects.get(object_id=body["id"], action="create")
    assert [leg["to_country"] for leg in event.changes["legs"][1]] == ["VN", "TH", "US"]


@pytest.mark.parametrize(
    ("leg", "field"),
    [
        ({"from_country": "CN", "departed_on": "2025-03-05", "arrived_on": "2025-03-04"}, "arrived_on"),
        ({"mode": "teleport"}, "mode"),
        ({"to_country": "XX"}, "to_country"),
        ({"from_country": "China"}, "from_country"),
        ({"departed_on": "yesterday"}, "departed_on"),
        ({"captain": "Haddock"}, "captain"),
    ],
)
def test_bad_legs_are_a_400_naming_the_leg_field(api, leg, field):
    response = post(api, legs=[{"from_country": "CN", "to_country": "VN"}, leg])
    assert response.status_code == 400
    errors = response.json()["legs"]  # DRF names the bad item by its index
    assert list(errors) == ["1"] and field in errors["1"]
    assert not Shipment.objects.exists()


def test_at_most_fifty_legs(api):
    leg = {"from_country": "CN", "to_country": "VN"}
    assert post(api, legs=[leg] * 50).status_code == 201
    response = post(api, reference="BL-2", legs=[leg] * 51)
    assert response.status_code == 400 and "legs" in response.json()


def test_transit_countries_of_a_shipment_without_legs_are_not_written_through_the_api(api, world):
    # Read-only: before issue 8 a PATCH replaced them on a shipment without legs.
    shipment = factories.shipment(world.a, reference="BL-1", transit_countries=["VN"])
    response = api.patch(detail(shipment), {"transit_countries": ["KZ", "RU"]}, format="json")
    assert response.status_code == 200 and response.json()["transit_countries"] == ["VN"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "12.3456", True, [1]])
def test_quantity_refuses_what_is_not_a_quantity(api, value):
    response = post(api, quantity_kg=value)
    assert response.status_code == 400 and "quantity_kg" in response.json()


@pytest.mark.parametrize("raw", ["1e400", "NaN", "-1e400"])
def test_quantity_refuses_json_numbers_beyond_range(api, raw):
    body = '{"reference": "BL-1", "quantity_kg": ' + raw + "}"
    response = api.post(URL, body, content_type="application/json")
    assert response.status_code == 400  # NaN is not JSON at all: refused by the parser, before any field
    assert not Shipment.objects.exists()


@pytest.mark.parametrize("legs", [{"from_country": "CN"}, None, "CN-VN", [["CN", "VN"]]])
def test_legs_must_be_a_list_of_objects(api, legs):
    response = post(api, legs=legs)
    assert response.status_code == 400 and "legs" in response.json()


def test_a_leg_arriving_the_day_it_departs_is_fine(api):
    response = post(api, legs=[{"departed_on": "2025-03-05", "arrived_on": "2025-03-05"}])
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity_kg": -1}, "quantity_kg"),
        ({"quantity_kg": "a tonne"}, "quantity_kg"),
        ({"purity_pct": "100.5"}, "purity_pct"),
        ({"purity_pct": -0.1}, "purity_pct"),
        ({"declared_value": -5}, "declared_value"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": "dollars"}, "currency"),
        ({"origin_country": "XX"}, "origin_country"),
        ({"destination_country": "USA"}, "destination_country"),
        ({"hs_code": "81a0"}, "hs_code"),
        ({"declared_hs_code": "8"}, "declared_hs_code"),
        ({"hs_code": "12345678901"}, "hs_code"),
        ({"status": "lost"}, "status"),
        ({"commodity": "unobtainium"}, "commodity"),
        ({"seized_on": "31/12/2025"}, "seized_on"),
        ({"quantity_kg": 10, "seized_quantity_kg": 11}, "seized_quantity_kg"),
        ({"seized_quantity_kg": -1}, "seized_quantity_kg"),
        ({"consignee": {"type": "person"}}, "consignee"),
        ({"consignee": {"type": "vessel", "id": "00000000-0000-0000-0000-000000000001"}}, "consignee"),
        ({"notify_party": "someone"}, "notify_party"),
        ({"ordering_party": {"type": "person", "id": "not-a-uuid"}}, "ordering_party"),
        ({"licence": "not-a-uuid"}, "licence"),
        ({"licence": "00000000-0000-0000-0000-000000000001"}, "licence"),
        ({"cases": ["00000000-0000-0000-0000-000000000001"]}, "cases"),
        ({"cases": "not-a-list"}, "cases"),
        ({"colour": "grey"}, "colour"),
    ],
)
def test_field_rules(api, body, field):
    response = post(api, **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Shipment.objects.exists()


def test_every_bad_field_is_named_at_once(api):
    response = post(api, quantity_kg=-1, origin_country="XX", status="lost")
    assert response.status_code == 400
    assert {"quantity_kg", "origin_country", "status"} <= set(response.json())


def test_reference_is_required(api):
    response = api.post(URL, {"commodity": "antimony"}, format="json")
    assert response.status_code == 400 and "reference" in response.json()


def test_quantities_accept_strings_and_numbers(api):
    assert post(api, quantity_kg="12.5").json()["quantity_kg"] == "12.500"
    assert post(api, reference="BL-2", quantity_kg=7).json()["quantity_kg"] == "7.000"
    assert post(api, reference="BL-3", quantity_kg=0).status_code == 201


def test_seized_quantity_is_checked_against_the_stored_quantity(api, shipment):
    response = api.patch(detail(shipment), {"seized_quantity_kg": "1000.001"}, format="json")
    assert response.status_code == 400 and "seized_quantity_kg" in response.json()
    ok = api.patch(detail(shipment), {"status": "seized", "seized_on": "2025-04-03", "seized_quantity_kg": "1000",
                                      "seizure_location": "Long Beach"}, format="json")
    assert ok.status_code == 200, ok.json()
    assert ok.json()["seized_quantity_kg"] == "1000.000" and ok.json()["seizure_location"] == "Long Beach"
    lower = api.patch(detail(shipment), {"quantity_kg": "999"}, format="json")
    assert lower.status_code == 400 and "seized_quantity_kg" in lower.json()


def test_read_only_fields_sent_by_the_client_are_ignored(api, world):
    response = post(api, agency="ASB", version=9, id="00000000-0000-0000-0000-000000000000",
                    created_at="2000-01-01T00:00:00Z")
    assert response.status_code == 201
    body = response.json()
    assert body["agency"] == "SSB" and body["version"] == 1 and body["id"] != "00000000-0000-0000-0000-000000000000"


# --- references to other records ---------------------------------------------------------


@pytest.mark.parametrize("role", ["consignor", "consignee", "notify_party", "ordering_party"])
def test_a_party_of_another_agency_is_a_400_on_that_field(api, world, role):
    foreign = factories.organization(world.b, "Their Company")
    response = post(api, **{role: ref(foreign)})
    assert response.status_code == 400
    assert list(response.json()) == [role]
    assert not Shipment.objects.exists()


@pytest.mark.parametrize("role", ["consignor", "consignee", "notify_party", "ordering_party"])
def test_each_party_role_is_stored_and_can_be_cleared(api, world, org, role):
    response = post(api, **{role: ref(org)})
    assert response.status_code == 201
    assert response.json()[role]["id"] == str(org.pk)
    cleared = api.patch(detail(response.json()["id"]), {role: None}, format="json")
    assert cleared.status_code == 200 and cleared.json()[role] is None


def test_a_party_with_the_wrong_type_is_a_400(api, org):
    response = post(api, consignee={"type": "person", "id": str(org.pk)})
    assert response.status_code == 400 and "consignee" in response.json()


def test_an_archived_party_is_a_400(api, world):
    gone = factories.organization(world.a, archived=True)
    assert post(api, consignee=ref(gone)).status_code == 400


def test_licence_must_be_one_of_the_agency(api, world, org):
    own = factories.licence(world.a, holder=org)
    foreign = factories.licence(world.b)
    response = post(api, licence=str(own.pk))
    assert response.status_code == 201 and response.json()["licence"] == str(own.pk)
    refused = post(api, reference="BL-2", licence=str(foreign.pk))
    assert refused.status_code == 400 and list(refused.json()) == ["licence"]
    archived = factories.licence(world.a, holder=org, archived=True)
    assert post(api, reference="BL-3", licence=str(archived.pk)).status_code == 400
    assert api.patch(detail(response.json()["id"]), {"licence": None}, format="json").json()["licence"] is None


def test_cases_must_be_visible_cases_of_the_agency(client_for, world, investigator):
    api = client_for(investigator)
    mine = factories.case(world.a, world.a1)
    other_unit = factories.case(world.a, world.a2)  # not visible to an investigator of a1
    foreign = factories.case(world.b, world.b1)
    ok = post(api, cases=[str(mine.pk)])
    assert ok.status_code == 201 and ok.json()["cases"] == [str(mine.pk)]
    for case in (other_unit, foreign):
        refused = post(api, reference="BL-2", cases=[str(case.pk)])
        assert refused.status_code == 400 and list(refused.json()) == ["cases"]


def test_links_to_cases_the_caller_cannot_see_are_hidden_and_kept(client_for, world, investigator):
    mine, hidden = factories.case(world.a, world.a1), factories.case(world.a, world.a2)
    shipment = factories.shipment(world.a, cases=(mine, hidden))
    api = client_for(investigator)
    assert api.get(detail(shipment)).json()["cases"] == [str(mine.pk)]
    response = api.patch(detail(shipment), {"cases": []}, format="json")
    assert response.status_code == 200 and response.json()["cases"] == []
    assert list(shipment.cases.all()) == [hidden]
    supervisor = client_for(factories.user(world.a, "supervisor", world.a1))
    assert supervisor.get(detail(shipment)).json()["cases"] == [str(hidden.pk)]


def test_source_id_is_unique_per_agency_and_source(api, client_for, world):
    assert post(api, source="customs", source_id="D-1").status_code == 201
    duplicate = post(api, reference="BL-2", source="customs", source_id="D-1")
    assert duplicate.status_code == 400 and "source_id" in duplicate.json()
    assert post(api, reference="BL-3", source="registry", source_id="D-1").status_code == 201
    assert post(api, reference="BL-4", source="customs", source_id="").status_code == 201
    assert post(api, reference="BL-5", source="customs", source_id="").status_code == 201
    other = client_for(factories.user(world.b, "investigator", world.b1))
    assert post(other, source="customs", source_id="D-1").status_code == 201
    mine = Shipment.objects.get(agency=world.a, source="registry")
    moved = api.patch(detail(mine), {"source": "customs"}, format="json")
    assert moved.status_code == 400 and "source_id" in moved.json()


# --- reading and filters -------------------------------------------------------------------


@pytest.fixture
def fleet(world, org):
    """Five shipments of agency a, with one of agency b's that no filter may ever return."""
    person = factories.person(world.a, "Li Na")
    notify = factories.organization(world.a, "Forwarder")
    case = factories.case(world.a, world.a1)
    licence = factories.licence(world.a, holder=org)
    items = {
        "route": factories.shipment(world.a, reference="BL-ROUTE", commodity_id="antimony", hs_code="811010",
                                    quantity_kg="1000", declared_value="5000", origin_country="CN",
                                    destination_country="US", legs=tuple(ROUTE), consignor=org, consignee=person,
                                    status="in_transit", source="customs", declared_description="zinc ore"),
        "gallium": factories.shipment(world.a, reference="BL-GA", commodity_id="gallium", hs_code="811292",
                                      quantity_kg="50", declared_value="90000", origin_country="CN",
                                      destination_country="DE", notify_party=org, status="seized",
                                      licence=licence, cases=(case,),
                                      legs=({"from_country": "CN", "to_country": "DE",
                                             "departed_on": "2025-01-10"},)),
        "graphite": factories.shipment(world.a, reference="BL-GR", commodity_id="graphite", hs_code="250410",
                                       quantity_kg="20000", origin_country="MZ", destination_country="CN",
                                       ordering_party=person, consignee=notify, status="delivered",
                                       transit_countries=["ZA"]),
        "bare": factories.shipment(world.a, reference="BL-BARE", declared_description="machine parts"),
        "antimony2": factories.shipment(world.a, reference="BL-SB2", commodity_id="antimony", hs_code="261710",
                                        quantity_kg="300", origin_country="VN", destination_country="US",
                                        consignor=person, source="registry",
                                        legs=({"from_country": "VN", "to_country": "MY", "departed_on": "2025-06-01"},
                                              {"from_country": "MY", "to_country": "US"})),
    }
    factories.shipment(world.b, reference="BL-THEIRS", commodity_id="antimony", origin_country="CN",
                       destination_country="US", hs_code="811010", status="in_transit", quantity_kg="1000",
                       legs=tuple(ROUTE), source="customs")
    return {"items": items, "org": org, "person": person, "notify": notify, "case": case}


def refs(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {item["reference"] for item in response.json()["results"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"BL-ROUTE", "BL-GA", "BL-GR", "BL-BARE", "BL-SB2"}),
        ({"commodity": "antimony"}, {"BL-ROUTE", "BL-SB2"}),
        ({"hs_code": "8110"}, {"BL-ROUTE"}),
        ({"hs_code": "81"}, {"BL-ROUTE", "BL-GA"}),
        ({"hs_code": "8110.10"}, {"BL-ROUTE"}),
        ({"hs_code": "2617.10"}, {"BL-SB2"}),
        ({"status": "seized"}, {"BL-GA"}),
        ({"status": ["seized", "delivered"]}, {"BL-GA", "BL-GR"}),
        ({"origin_country": "CN"}, {"BL-ROUTE", "BL-GA"}),
        ({"origin_country": "cn"}, {"BL-ROUTE", "BL-GA"}),
        ({"destination_country": "US"}, {"BL-ROUTE", "BL-SB2"}),
        ({"transit_country": "TH"}, {"BL-ROUTE"}),
        ({"transit_country": "MY"}, {"BL-SB2"}),
        ({"transit_country": "ZA"}, {"BL-GR"}),
        ({"transit_country": "US"}, set()),
        ({"departed_after": "2025-02-01"}, {"BL-ROUTE", "BL-SB2"}),
        ({"departed_before": "2025-03-01"}, {"BL-ROUTE", "BL-GA"}),
        ({"departed_after": "2025-02-01", "departed_before": "2025-05-31"}, {"BL-ROUTE"}),
        ({"quantity_min": "300"}, {"BL-ROUTE", "BL-GR", "BL-SB2"}),
        ({"quantity_max": "300"}, {"BL-GA", "BL-SB2"}),
        ({"quantity_min": 100, "quantity_max": "1000.0"}, {"BL-ROUTE", "BL-SB2"}),
        ({"has_licence": "true"}, {"BL-GA"}),
        ({"has_licence": "false"}, {"BL-ROUTE", "BL-GR", "BL-BARE", "BL-SB2"}),
        # A boolean in the schema; the server takes 1/0 and any case too.
        ({"has_licence": "1"}, {"BL-GA"}),
        ({"has_licence": "True"}, {"BL-GA"}),
        ({"has_licence": "0"}, {"BL-ROUTE", "BL-GR", "BL-BARE", "BL-SB2"}),
        ({"has_licence": "FALSE"}, {"BL-ROUTE", "BL-GR", "BL-BARE", "BL-SB2"}),
        ({"source": "customs"}, {"BL-ROUTE"}),
        ({"q": "ore"}, {"BL-ROUTE"}),
        ({"q": "bl-sb"}, {"BL-SB2"}),
        ({"q": "machine"}, {"BL-BARE"}),
    ],
)
def test_filters(api, fleet, params, expected):
    assert refs(api.get(URL, params)) == expected


def test_party_filters(api, fleet):
    org, person, notify = fleet["org"], fleet["person"], fleet["notify"]
    assert refs(api.get(URL, {"consignor": org.pk})) == {"BL-ROUTE"}
    assert refs(api.get(URL, {"consignee": person.pk})) == {"BL-ROUTE"}
    assert refs(api.get(URL, {"consignee": notify.pk})) == {"BL-GR"}
    assert refs(api.get(URL, {"party": org.pk})) == {"BL-ROUTE", "BL-GA"}  # consignor, notify party
    assert refs(api.get(URL, {"party": person.pk})) == {"BL-ROUTE", "BL-GR", "BL-SB2"}  # consignee, ordering, consignor


def test_case_filter(api, fleet):
    assert refs(api.get(URL, {"case": fleet["case"].pk})) == {"BL-GA"}


def test_timestamps_filters(api, fleet):
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).isoformat()
    assert refs(api.get(URL, {"created_after": future})) == set()
    assert refs(api.get(URL, {"updated_after": "2000-01-01T00:00:00Z"})) == {
        "BL-ROUTE", "BL-GA", "BL-GR", "BL-BARE", "BL-SB2"}


@pytest.mark.parametrize(
    "params",
    [{"hs_code": "81x"}, {"consignor": "nope"}, {"party": "nope"}, {"departed_after": "March"},
     {"quantity_min": "lots"}, {"has_licence": "perhaps"}, {"status": "lost"}, {"case": "12"},
     {"created_after": "yesterday"}],
)
def test_bad_filter_values_are_a_400(api, fleet, params):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert set(params) <= set(response.json())


@pytest.mark.parametrize(
    ("ordering", "first"),
    [("quantity_kg", "BL-GA"), ("-quantity_kg", "BL-BARE"), ("declared_value", "BL-ROUTE"),
     ("reference", "BL-BARE"), ("-reference", "BL-SB2"), ("departed_on", "BL-GA"), ("-created_at", "BL-SB2")],
)
def test_ordering(api, fleet, ordering, first):
    # Nulls sort last ascending and first descending (PostgreSQL).
    results = api.get(URL, {"ordering": ordering}).json()["results"]
    assert results[0]["reference"] == first


def test_ordering_by_updated_at(api, fleet):
    fleet["items"]["bare"].save()
    assert api.get(URL, {"ordering": "-updated_at"}).json()["results"][0]["reference"] == "BL-BARE"


def test_page_size_is_capped_and_next_followed(api, fleet):
    first = api.get(URL, {"page_size": 2}).json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["next"]
    assert api.get(URL, {"page_size": 100000}).status_code == 200


# --- concurrency, archive, access ----------------------------------------------------------


def test_etag_and_if_match(api, shipment):
    first = api.get(detail(shipment))
    assert first["ETag"] == '"1"'
    ok = api.patch(detail(shipment), {"status": "in_transit"}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    stale = api.patch(detail(shipment), {"status": "seized"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412 and "detail" in stale.json()
    stale_put = api.put(detail(shipment), {"reference": "BL-1", "status": "seized"}, format="json",
                        HTTP_IF_MATCH='"1"')
    assert stale_put.status_code == 412
    assert api.delete(detail(shipment), HTTP_IF_MATCH='"1"').status_code == 412
    shipment.refresh_from_db()
    assert shipment.status == "in_transit" and shipment.version == 2 and not shipment.archived


def test_put_replaces_the_writable_fields(api, shipment):
    response = api.put(detail(shipment), {"reference": "BL-1b", "legs": ROUTE, "origin_country": "CN",
                                          "destination_country": "US"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["reference"] == "BL-1b" and response.json()["transit_countries"] == ["VN", "TH"]


def test_delete_archives(client_for, world, api, shipment, supervisor):
    assert api.delete(detail(shipment)).status_code == 204
    shipment.refresh_from_db()
    assert shipment.archived and Shipment.objects.filter(pk=shipment.pk).exists()
    assert AuditEvent.objects.filter(object_id=str(shipment.pk), action="archive").exists()
    assert refs(api.get(URL)) == set()
    assert api.get(detail(shipment)).status_code == 200  # still readable by id, marked archived
    assert api.get(URL, {"include_archived": "true"}).status_code == 403
    assert refs(client_for(supervisor).get(URL, {"include_archived": "true"})) == {"BL-1"}
    assert api.delete(detail(shipment)).status_code == 204  # again: nothing more happens


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("analyst", 403), ("auditor", 403),
                                                ("investigator", 201), ("supervisor", 201),
                                                ("agency_admin", 201)])
def test_who_may_create(client_for, world, role, expected):
    response = post(client_for(factories.user(world.a, role, world.a1)))
    assert response.status_code == expected


@pytest.mark.parametrize("role", ["viewer", "analyst", "auditor"])
def test_readers_may_read_but_not_change(client_for, world, shipment, role):
    client = client_for(factories.user(world.a, role, world.a2))
    assert client.get(detail(shipment)).status_code == 200
    assert refs(client.get(URL)) == {"BL-1"}
    assert client.patch(detail(shipment), {"status": "seized"}, format="json").status_code == 403
    assert client.delete(detail(shipment)).status_code == 403


def test_anonymous_is_401(client_for, shipment):
    assert client_for(None).get(URL).status_code == 401
    assert client_for(None).get(detail(shipment)).status_code == 401


def test_another_agencys_shipment_is_404(client_for, world, shipment):
    other = client_for(factories.user(world.b, "supervisor", world.b1))
    assert other.get(detail(shipment)).status_code == 404
    assert other.patch(detail(shipment), {"status": "seized"}, format="json").status_code == 404
    assert other.put(detail(shipment), {"reference": "x"}, format="json").status_code == 404
    assert other.delete(detail(shipment)).status_code == 404
    assert refs(other.get(URL)) == set()
    shipment.refresh_from_db()
    assert shipment.version == 1


def test_a_malformed_id_is_404(api):
    assert api.get(f"{URL}not-a-uuid/").status_code == 404


def test_a_shipment_of_a_shared_case_is_visible_read_only(client_for, world, investigator, org):
    shared_case = factories.case(world.a, world.a1)
    private_case = factories.case(world.a, world.a1)
    shipment = factories.shipment(world.a, reference="BL-SHARED", consignee=org,
                                  cases=(shared_case, private_case))
    factories.share(shared_case, world.b, access="write")
    other = client_for(factories.user(world.b, "investigator", world.b1))
    response = other.get(detail(shipment))
    assert response.status_code == 200
    body = response.json()
    assert body["agency"] == "SSB" and body["consignee"]["name"] == org.name
    assert body["cases"] == [str(shared_case.pk)]  # only the case shared with them
    assert refs(other.get(URL)) == {"BL-SHARED"}
    assert refs(other.get(URL, {"case": shared_case.pk})) == {"BL-SHARED"}
    # Read-only even through a read-write share: shipments are the owning agency's master index.
    assert other.patch(detail(shipment), {"status": "seized"}, format="json").status_code == 403
    assert other.delete(detail(shipment)).status_code == 403


def test_a_write_share_does_not_let_the_other_agency_link_its_own_records(client_for, world, org):
    shared_case = factories.case(world.a, world.a1)
    factories.share(shared_case, world.b, access="write")
    other = client_for(factories.user(world.b, "investigator", world.b1))
    response = post(other, cases=[str(shared_case.pk)])
    assert response.status_code == 400 and list(response.json()) == ["cases"]


# --- query counts ----------------------------------------------------------------------------


def test_list_queries_do_not_grow_with_page_size(client_for, world, supervisor):
    case = factories.case(world.a, world.a1)
    org, person = factories.organization(world.a), factories.person(world.a)
    licence = factories.licence(world.a, holder=org)
    for i in range(25):
        factories.shipment(world.a, reference=f"BL-{i}", commodity_id="antimony", consignor=org, consignee=person,
                           notify_party=org, ordering_party=person, licence=licence, legs=tuple(ROUTE),
                           cases=(case,), origin_country="CN", destination_country="US")
    api = client_for(supervisor)
    api.get(URL, {"page_size": 2})  # warm-up: token, content types
    counts = []
    for size in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(URL, {"page_size": size})
        assert response.status_code == 200 and len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
