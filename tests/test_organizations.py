"""Organisations from the client's side: field rules, fuzzy name search without legal forms, filters, access."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entities.models import Organization

from . import factories

URL = "/api/v1/organizations/"
VALID_USCC = "91110000802100433B"  # a Chinese unified social credit code with a correct check character


def detail(pk):
    return f"{URL}{pk}/"


def create(api, **fields):
    return api.post(URL, {"name": "Antimony Trading Co., Ltd.", **fields}, format="json")


def names_found(api, **params):
    response = api.get(URL, params)
    assert response.status_code == 200, response.json()
    return [o["name"] for o in response.json()["results"]]


# --- fields ---------------------------------------------------------------------------------------


def test_create_returns_every_contract_field(api):
    response = create(api, names=["锑贸易有限公司"], kind="trader", jurisdiction="cn",
                      registration_number=VALID_USCC, incorporated_on="2019-03-01", dissolved_on="2024-01-31",
                      addresses=[{"text": "Room 8, 1 Minzu Ave, Nanning", "country": "CN"}],
                      phones=["+86 771 555 1234"], emails=["Sales@Antimony-Trading.cn"],
                      website="https://antimony-trading.cn", notes="front", source="registry", source_id="C-1")
    assert response.status_code == 201, response.json()
    body = response.json()
    for field in ("id", "created_at", "updated_at", "version", "archived", "agency", "name", "names", "kind",
                  "jurisdiction", "registration_number", "incorporated_on", "dissolved_on", "addresses", "phones",
                  "emails", "website", "notes", "source", "source_id", "same_as", "cases"):
        assert field in body, field
    assert body["agency"] == "SSB" and body["version"] == 1
    assert body["jurisdiction"] == "CN" and body["registration_number"] == VALID_USCC
    assert body["names"] == ["锑贸易有限公司"] and body["emails"] == ["sales@antimony-trading.cn"]
    assert body["phones"] == ["+867715551234"]
    assert body["same_as"] == [] and body["cases"] == []
    assert Organization.objects.get(pk=body["id"]).type == "organization"


def test_kind_defaults_to_company_and_is_checked(api):
    assert create(api).json()["kind"] == "company"
    response = create(api, kind="cartel")
    assert response.status_code == 400 and "kind" in response.json()


def test_registration_number_is_checked_where_the_jurisdiction_has_a_checksum(api):
    assert create(api, jurisdiction="CN", registration_number="9111 0000-8021 0043 3b").json()[
        "registration_number"] == VALID_USCC
    bad = create(api, jurisdiction="CN", registration_number="91310000MA1FL4CE6U")
    assert bad.status_code == 400 and set(bad.json()) == {"registration_number"}
    # no checksum known for Hong Kong: accepted as given, compacted
    assert create(api, jurisdiction="HK", registration_number="12-34 567").json()["registration_number"] == "1234567"
    assert create(api, registration_number="ab 123").json()["registration_number"] == "AB123"


def test_a_new_jurisdiction_rechecks_the_stored_registration_number(api, world):
    org = factories.organization(world.a, jurisdiction="HK", registration_number="1234567")
    response = api.patch(detail(org.pk), {"jurisdiction": "CN"}, format="json")
    assert response.status_code == 400 and "registration_number" in response.json()
    org.refresh_from_db()
    assert org.jurisdiction == "HK"


def test_a_bad_jurisdiction_is_a_400(api):
    response = create(api, jurisdiction="XX")
    assert response.status_code == 400 and "jurisdiction" in response.json()


def test_dissolution_cannot_precede_incorporation(api, world):
    response = create(api, incorporated_on="2020-05-01", dissolved_on="2020-04-30")
    assert response.status_code == 400 and set(response.json()) == {"dissolved_on"}
    assert create(api, incorporated_on="2020-05-01", dissolved_on="2020-05-01").status_code == 201
    org = factories.organization(world.a, incorporated_on=datetime.date(2020, 5, 1))
    response = api.patch(detail(org.pk), {"dissolved_on": "2019-01-01"}, format="json")
    assert response.status_code == 400 and "dissolved_on" in response.json()


def test_phones_without_plus_are_read_in_the_jurisdiction(api):
    assert create(api, jurisdiction="VN", phones=["024 3825 3456"]).json()["phones"] == ["+842438253456"]
    response = create(api, phones=["024 3825 3456"])
    assert response.status_code == 400 and list(response.json()["phones"]) == ["0"]


@pytest.mark.parametrize(("website", "status"), [("https://example.cn", 201), ("example.cn", 201),
                                                  ("not a site", 400), ("ftp://example.cn", 400)])
def test_website(api, website, status):
    response = create(api, website=website)
    assert response.status_code == status
    if status == 400:
        assert "website" in response.json()


def test_bad_fields_are_named_together(api):
    response = create(api, name="", kind="x", jurisdiction="XX", emails=["nope"], phones=["+1 0"],
                      incorporated_on="yesterday")
    assert response.status_code == 400
    assert set(response.json()) == {"name", "kind", "jurisdiction", "emails", "phones", "incorporated_on"}


def test_source_id_is_unique_per_agency(api, world):
    assert create(api, source="registry", source_id="91-1").status_code == 201
    response = create(api, name="Other Ltd", source="registry", source_id="91-1")
    assert response.status_code == 400 and "source_id" in response.json()
    assert Organization.objects.count() == 1


# --- fuzzy name search ----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["antimony trading", "ANTIMONY TRADING CO LTD", "Antimony Trading Co., Ltd.",
                                   "Antimony Trading Limited", "antimony tradng"])
def test_name_finds_a_company_without_its_legal_form(api, world, query):
    factories.organization(world.a, "Antimony Trading Co., Ltd.")
    factories.organization(world.a, "Gallium Metals LLC")
    assert names_found(api, name=query) == ["Antimony Trading Co., Ltd."]


@pytest.mark.parametrize("query", ["广西锑业", "广西锑业有限公司", "Guang Xi Ti Ye", "guang xi ti ye you xian gong si"])
def test_name_finds_a_chinese_company_by_its_name_alone(api, world, query):
    factories.organization(world.a, "广西锑业有限公司")
    factories.organization(world.a, "云南锗业股份有限公司")
    assert names_found(api, name=query) == ["广西锑业有限公司"]


def test_name_matches_variants(api, world):
    factories.organization(world.a, "Guangxi Antimony Industry Co., Ltd.", names=["广西锑业有限公司"])
    assert names_found(api, name="广西锑业") == ["Guangxi Antimony Industry Co., Ltd."]


# --- filters --------------------------------------------------------------------------------------


def test_filters(api, world, investigator):
    trader = factories.organization(world.a, "Antimony Trading Co., Ltd.", kind="trader", jurisdiction="CN",
                                    registration_number=VALID_USCC, incorporated_on=datetime.date(2023, 6, 1),
                                    phones=["+867715551234"], emails=["sales@antimony-trading.cn"],
                                    identifiers=[{"scheme": "tax_id", "number": "0312068045", "country": "VN"}])
    factories.organization(world.a, "Hai Phong Forwarding JSC", kind="freight_forwarder", jurisdiction="VN",
                           registration_number="0312068045", incorporated_on=datetime.date(2010, 1, 1),
                           phones=["+842438253456"], emails=["ops@hpf.vn"], source="customs")
    case = factories.case(world.a, world.a1, lead=investigator)
    factories.party(case, trader, role="buyer")

    assert names_found(api, kind="trader") == ["Antimony Trading Co., Ltd."]
    assert names_found(api, kind=["trader", "freight_forwarder"]) == ["Antimony Trading Co., Ltd.",
                                                                       "Hai Phong Forwarding JSC"]
    assert names_found(api, jurisdiction="vn") == ["Hai Phong Forwarding JSC"]
    assert names_found(api, registration_number="9111 0000 8021 0043 3B") == ["Antimony Trading Co., Ltd."]
    # the trader holds the forwarder's number as a (VN tax) identifier, not as its registration number
    assert names_found(api, registration_number="0312-068-045") == ["Hai Phong Forwarding JSC"]
    assert names_found(api, incorporated_after="2020-01-01") == ["Antimony Trading Co., Ltd."]
    assert names_found(api, incorporated_before="2020-01-01") == ["Hai Phong Forwarding JSC"]
    assert names_found(api, phone="+84 24 3825 3456") == ["Hai Phong Forwarding JSC"]
    assert names_found(api, email="SALES@antimony-trading.cn") == ["Antimony Trading Co., Ltd."]
    assert names_found(api, case=str(case.pk)) == ["Antimony Trading Co., Ltd."]
    assert names_found(api, source="customs") == ["Hai Phong Forwarding JSC"]
    assert names_found(api, q="forwarding") == ["Hai Phong Forwarding JSC"]
    assert names_found(api, ordering="-incorporated_on") == ["Antimony Trading Co., Ltd.",
                                                             "Hai Phong Forwarding JSC"]
    assert names_found(api, ordering="incorporated_on") == ["Hai Phong Forwarding JSC",
                                                            "Antimony Trading Co., Ltd."]


@pytest.mark.parametrize(("param", "value"), [("kind", "cartel"), ("jurisdiction", "XX"),
                                              ("incorporated_after", "soon"), ("phone", "nope"),
                                              ("case", "1")])
def test_a_bad_filter_value_is_a_400_naming_it(api, world, param, value):
    response = api.get(URL, {param: value})
    assert response.status_code == 400 and param in response.json()


# --- access, ETags, archive ------------------------------------------------------------------------


def test_a_person_is_not_an_organisation(api, world):
    person = factories.person(world.a, "Zhang Wei")
    assert api.get(detail(person.pk)).status_code == 404
    assert api.patch(detail(person.pk), {"name": "x"}, format="json").status_code == 404
    assert names_found(api) == []


def test_another_agencys_organisation_is_404(api, world):
    foreign = factories.organization(world.b, "Antimony Trading Co., Ltd.")
    assert api.get(detail(foreign.pk)).status_code == 404
    assert api.patch(detail(foreign.pk), {"name": "x"}, format="json").status_code == 404
    assert api.delete(detail(foreign.pk)).status_code == 404
    assert names_found(api, name="antimony trading") == []


def test_an_organisation_of_a_shared_case_is_read_only_to_the_other_agency(client_for, world):
    case = factories.case(world.b, world.b1)
    org = factories.organization(world.b, "Antimony Trading Co., Ltd.")
    factories.party(case, org, role="buyer")
    factories.share(case, world.a, access="read")
    reader = client_for(factories.user(world.a, "supervisor", world.a1))
    assert reader.get(detail(org.pk)).json()["cases"] == [{"id": str(case.pk), "reference": case.reference,
                                                           "role": "buyer"}]
    assert reader.patch(detail(org.pk), {"kind": "shell_company"}, format="json").status_code == 403
    assert reader.delete(detail(org.pk)).status_code == 403


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("analyst", 403), ("investigator", 201)])
def test_who_may_create(client_for, world, role, status):
    user = factories.user(world.a, role, world.a1)
    assert client_for(user).post(URL, {"name": "x"}, format="json").status_code == status


def test_etag_if_match_and_archive(api, world):
    org = factories.organization(world.a, "Antimony Trading Co., Ltd.")
    assert api.get(detail(org.pk))["ETag"] == '"1"'
    assert api.patch(detail(org.pk), {"kind": "shell_company"}, format="json", HTTP_IF_MATCH='"1"').status_code == 200
    assert api.patch(detail(org.pk), {"kind": "trader"}, format="json", HTTP_IF_MATCH='"1"').status_code == 412
    assert api.delete(detail(org.pk), HTTP_IF_MATCH='"1"').status_code == 412
    assert api.delete(detail(org.pk), HTTP_IF_MATCH='"2"').status_code == 204
    org.refresh_from_db()
    assert org.kind == "shell_company" and org.archived is True and org.version == 3
    assert names_found(api) == []


def test_list_queries_do_not_grow_with_page_size(api, world, investigator):
    case = factories.case(world.a, world.a1, lead=investigator)
    for i in range(20):
        factories.party(case, factories.organization(world.a, f"Trading {i:02d} Co., Ltd."), role="buyer")
    assert api.get(URL, {"page_size": 1}).status_code == 200

    def measure(**params):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(URL, params)
        assert response.status_code == 200
        assert all(o["cases"] for o in response.json()["results"])
        return len(queries)

    assert measure(page_size=2) == measure(page_size=20)
    assert measure(page_size=2, name="trading") == measure(page_size=20, name="trading")
