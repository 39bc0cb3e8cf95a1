"""Links from the client's side: which kinds join which entities, field rules, filters, access, ETags, archive."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entities.models import Link

from . import factories

URL = "/api/v1/links/"


def detail(pk):
    return f"{URL}{pk}/"


def ref(entity):
    return {"type": entity.type, "id": str(entity.pk)}


@pytest.fixture
def ring(world):
    """Two persons and two companies of agency A."""
    return {
        "zhang": factories.person(world.a, "Zhang Wei"),
        "li": factories.person(world.a, "Li Na"),
        "trading": factories.organization(world.a, "Antimony Trading Co., Ltd."),
        "shell": factories.organization(world.a, "Grey Ore Holdings Ltd", kind="shell_company"),
    }


@pytest.fixture
def analyst(client_for, world):
    return client_for(factories.user(world.a, "analyst", world.a1))


def post(client, kind, source, target, **fields):
    return client.post(URL, {"kind": kind, "source": ref(source), "target": ref(target), **fields}, format="json")


# --- fields and kind rules ---------------------------------------------------------------------------


def test_create_returns_every_contract_field(analyst, ring):
    response = post(analyst, "ownership", ring["zhang"], ring["shell"], subtype="Shareholder", share_pct="51.5",
                    start_date="2021-01-01", end_date="2023-12-31", description="via nominee",
                    confidence="confirmed")
    assert response.status_code == 201, response.json()
    body = response.json()
    for field in ("id", "created_at", "updated_at", "version", "archived", "agency", "kind", "subtype", "source",
                  "target", "share_pct", "amount", "currency", "start_date", "end_date", "description",
                  "confidence", "case"):
        assert field in body, field
    assert body["source"] == {"type": "person", "id": str(ring["zhang"].pk), "name": "Zhang Wei"}
    assert body["target"] == {"type": "organization", "id": str(ring["shell"].pk), "name": "Grey Ore Holdings Ltd"}
    assert body["subtype"] == "shareholder" and body["share_pct"] == "51.500" and body["case"] is None
    assert body["agency"] == "SSB" and body["version"] == 1 and response["ETag"] == '"1"'


def test_confidence_defaults_to_probable(analyst, ring):
    assert post(analyst, "family", ring["zhang"], ring["li"]).json()["confidence"] == "probable"


@pytest.mark.parametrize(
    ("kind", "source", "target", "bad"),
    [
        ("family", "zhang", "li", None),
        ("family", "zhang", "trading", "target"),
        ("family", "trading", "zhang", "source"),
        ("family", "trading", "shell", {"source", "target"}),
        ("associate", "zhang", "li", None),
        ("associate", "zhang", "shell", "target"),
        ("ownership", "zhang", "trading", None),
        ("ownership", "shell", "trading", None),
        ("ownership", "trading", "zhang", "target"),
        ("directorship", "li", "trading", None),
        ("directorship", "shell", "trading", None),
        ("directorship", "trading", "li", "target"),
        ("employment", "li", "trading", None),
        ("employment", "trading", "li", {"source", "target"}),
        ("employment", "li", "zhang", "target"),
        ("financing", "shell", "zhang", None),
        ("financing", "zhang", "li", None),
        ("representation", "trading", "shell", None),
        ("representation", "li", "trading", None),
    ],
)
def test_kind_rules(analyst, ring, kind, source, target, bad):
    response = post(analyst, kind, ring[source], ring[target])
    if bad is None:
        assert response.status_code == 201, response.json()
    else:
        assert response.status_code == 400
        assert set(response.json()) == ({bad} if isinstance(bad, str) else bad)
        assert not Link.objects.exists()


def test_a_link_to_itself_is_a_400(analyst, ring):
    response = post(analyst, "financing", ring["trading"], ring["trading"])
    assert response.status_code == 400 and "target" in response.json()


def test_a_kind_change_is_checked_against_the_stored_ends(analyst, world, ring):
    link = factories.link(world.a, ring["zhang"], ring["trading"], kind="financing")
    response = analyst.patch(detail(link.pk), {"kind": "family"}, format="json")
    assert response.status_code == 400 and "target" in response.json()
    assert analyst.patch(detail(link.pk), {"kind": "employment"}, format="json").status_code == 200
    response = analyst.patch(detail(link.pk), {"target": ref(ring["zhang"])}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"share_pct": "100.5"}, "share_pct"),
        ({"share_pct": -1}, "share_pct"),
        ({"share_pct": "lots"}, "share_pct"),
        ({"amount": "-5"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"start_date": "2024-02-01", "end_date": "2024-01-31"}, "end_date"),
        ({"confidence": "certain"}, "confidence"),
        ({"subtype": "x" * 40}, "subtype"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_400(analyst, ring, fields, bad):
    response = post(analyst, "ownership", ring["zhang"], ring["trading"], **fields)
    assert response.status_code == 400
    assert bad in response.json()


def test_an_unknown_kind_is_a_400(analyst, ring):
    response = post(analyst, "romance", ring["zhang"], ring["li"])
    assert response.status_code == 400 and set(response.json()) == {"kind"}


def test_share_bounds_and_amounts_are_accepted(analyst, ring):
    assert post(analyst, "ownership", ring["zhang"], ring["trading"], share_pct=100).status_code == 201
    assert post(analyst, "ownership", ring["li"], ring["trading"], share_pct=0).status_code == 201
    body = post(analyst, "financing", ring["shell"], ring["zhang"], amount="250000", currency="usd",
                start_date="2024-01-31", end_date="2024-01-31").json()
    assert body["amount"] == "250000.00" and body["currency"] == "USD"


@pytest.mark.parametrize("end", ["source", "target"])
def test_an_end_of_another_agency_or_archived_is_a_400_on_that_end(analyst, world, ring, end):
    foreign = factories.person(world.b, "Foreign")
    archived = factories.person(world.a, "Gone", archived=True)
    for other in (foreign, archived):
        ends = {"source": ring["zhang"], "target": ring["li"], end: other}
        response = post(analyst, "associate", ends["source"], ends["target"])
        assert response.status_code == 400 and set(response.json()) == {end}


def test_an_end_of_the_wrong_type_is_a_400(analyst, ring):
    response = analyst.post(URL, {"kind": "family", "source": {"type": "organization", "id": str(ring["zhang"].pk)},
                                  "target": ref(ring["li"])}, format="json")
    assert response.status_code == 400 and "source" in response.json()


def test_case_provenance_must_be_a_visible_case_of_the_agency(client_for, world, ring):
    user = factories.user(world.a, "analyst", world.a1)
    analyst = client_for(user)
    own = factories.case(world.a, world.a1)
    hidden = factories.case(world.a, world.a2)  # another unit's case
    foreign = factories.case(world.b, world.b1)
    shared_in = factories.case(world.b, world.b1)
    factories.share(shared_in, world.a, access="write")  # visible, but not the link's agency
    body = post(analyst, "family", ring["zhang"], ring["li"], case=str(own.pk)).json()
    assert body["case"] == str(own.pk)
    for case_id in (hidden.pk, foreign.pk, shared_in.pk, "00000000-0000-0000-0000-000000000000", "nope", 7):
        response = post(analyst, "family", ring["zhang"], ring["li"], case=str(case_id))
        assert response.status_code == 400 and set(response.json()) == {"case"}, case_id
    assert post(analyst, "family", ring["zhang"], ring["li"], case=None).json()["case"] is None


# --- filters ----------------------------------------------------------------------------------------


def test_filters(analyst, world, ring):
    case = factories.case(world.a, world.a1)
    family = factories.link(world.a, ring["zhang"], ring["li"], kind="family", subtype="sibling", case=case)
    owns = factories.link(world.a, ring["zhang"], ring["trading"], kind="ownership", description="51% via nominee")
    employs = factories.link(world.a, ring["li"], ring["shell"], kind="employment")

    def found(**params):
        response = analyst.get(URL, params)
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    assert found(kind="family") == {str(family.pk)}
    assert found(kind=["ownership", "employment"]) == {str(owns.pk), str(employs.pk)}
    assert found(entity=str(ring["zhang"].pk)) == {str(family.pk), str(owns.pk)}
    assert found(entity=str(ring["li"].pk)) == {str(family.pk), str(employs.pk)}
    assert found(entity=str(ring["trading"].pk)) == {str(owns.pk)}
    assert found(case=str(case.pk)) == {str(family.pk)}
    assert found(q="nominee") == {str(owns.pk)}
    assert found(q="SIBLING") == {str(family.pk)}
    ordered = [r["kind"] for r in analyst.get(URL, {"ordering": "kind"}).json()["results"]]
    assert ordered == ["employment", "family", "ownership"]
    newest_first = [r["id"] for r in analyst.get(URL).json()["results"]]
    assert newest_first == [str(employs.pk), str(owns.pk), str(family.pk)]


@pytest.mark.parametrize(("param", "value"), [("kind", "romance"), ("entity", "zhang"), ("case", "x")])
def test_a_bad_filter_value_is_a_400(analyst, param, value):
    response = analyst.get(URL, {param: value})
    assert response.status_code == 400 and param in response.json()


# --- access, ETags, archive -------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("auditor", 403), ("analyst", 201),
                                              ("investigator", 201), ("supervisor", 201)])
def test_who_may_create(client_for, world, ring, role, status):
    user = factories.user(world.a, role, world.a1)
    assert post(client_for(user), "family", ring["zhang"], ring["li"]).status_code == status


def test_a_viewer_may_read_but_not_change(client_for, world, ring):
    link = factories.link(world.a, ring["zhang"], ring["li"], kind="family")
    viewer = client_for(factories.user(world.a, "viewer", world.a1))
    assert viewer.get(detail(link.pk)).status_code == 200
    assert viewer.patch(detail(link.pk), {"subtype": "spouse"}, format="json").status_code == 403
    assert viewer.delete(detail(link.pk)).status_code == 403


def test_another_agencys_link_is_404(analyst, world):
    link = factories.link(world.b, factories.person(world.b), factories.person(world.b), kind="family")
    assert analyst.get(detail(link.pk)).status_code == 404
    assert analyst.patch(detail(link.pk), {"subtype": "spouse"}, format="json").status_code == 404
    assert analyst.delete(detail(link.pk)).status_code == 404
    assert analyst.get(URL).json()["results"] == []


def test_a_link_of_a_shared_case_is_read_only_to_the_other_agency(client_for, world):
    case = factories.case(world.b, world.b1)
    factories.share(case, world.a, access="read")
    link = factories.link(world.b, factories.person(world.b, "A"), factories.person(world.b, "B"), kind="family",
                          case=case)
    reader = client_for(factories.user(world.a, "supervisor", world.a1))
    assert reader.get(detail(link.pk)).json()["agency"] == "ASB"
    assert [r["id"] for r in reader.get(URL).json()["results"]] == [str(link.pk)]
    assert reader.patch(detail(link.pk), {"subtype": "spouse"}, format="json").status_code == 403
    assert reader.delete(detail(link.pk)).status_code == 403


def test_etag_if_match_and_archive(analyst, client_for, supervisor, world, ring):
    link = factories.link(world.a, ring["zhang"], ring["li"], kind="family")
    assert analyst.get(detail(link.pk))["ETag"] == '"1"'
    ok = analyst.patch(detail(link.pk), {"subtype": "sibling"}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    assert analyst.patch(detail(link.pk), {"subtype": "spouse"}, format="json",
                         HTTP_IF_MATCH='"1"').status_code == 412
    assert analyst.delete(detail(link.pk), HTTP_IF_MATCH='"1"').status_code == 412
    assert analyst.delete(detail(link.pk)).status_code == 204
    link.refresh_from_db()
    assert link.subtype == "sibling" and link.archived is True
    assert analyst.get(URL).json()["results"] == []
    assert analyst.get(detail(link.pk)).json()["archived"] is True
    listed = client_for(supervisor).get(URL, {"include_archived": "true"}).json()["results"]
    assert [r["id"] for r in listed] == [str(link.pk)]


def test_list_queries_do_not_grow_with_page_size(analyst, world):
    case = factories.case(world.a, world.a1)
    for i in range(20):
        factories.link(world.a, factories.person(world.a), factories.organization(world.a), kind="ownership",
                       case=case if i % 2 else None)
    assert analyst.get(URL, {"page_size": 1}).status_code == 200

    def measure(page_size):
        with CaptureQueriesContext(connection) as queries:
            response = analyst.get(URL, {"page_size": page_size})
        assert response.status_code == 200 and len(response.json()["results"]) == page_size
        return len(queries)

    assert measure(2) == measure(20)
