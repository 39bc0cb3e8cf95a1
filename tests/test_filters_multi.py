"""Filters that never surprise (API.md § Basics), from the client's side, on every list the URL resolver has.

- Every filter takes several values, repeated (`status=a&status=b`) or comma-separated (`status=a,b`), meaning any
  of them: for each list a representative filter with two values answers exactly the rows of either.
- The bounds of ranges, booleans and free text (`q`, a fuzzy `name`) keep one value; free text keeps its commas.
- A query parameter a list does not take, or an `ordering` field it does not sort by, is a 400 naming it.
- The schema lists every filter of every list, and `ordering` as an enum of what the list sorts by.

The lists are the resolver's (tests/access_routes.py): a list added tomorrow is in every parametrised test here, and
`test_every_list_has_a_representative_filter` fails until it is given one (or is said to have no filter of several
values).
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import resolve, reverse
from rest_framework.test import APIClient

from audit.services import record
from cases.models import Commodity
from imports.models import ImportJob
from shipments.models import Shipment

from . import factories
from .access_routes import EXCLUDED, api_routes
from .stages import built_once

pytestmark = pytest.mark.django_db

API = "/api/v1/"
UNKNOWN = "quantity_kg__gte"
KEYS = {"audit-list": "seq", "commodity-list": "code"}  # what names a row where it is not `id`


# --- the lists ------------------------------------------------------------------------------------------------


def list_routes() -> list[str]:
    """The names of every GET route under the API that answers a list or a search: a viewset's `list`, and each
    plain view (search, graph) the resolver has, but the excluded ones (the schema, its pages, the caller's
    account, the API's root)."""
    from django.urls import get_resolver

    from .access_routes import _walk

    callbacks: dict[str, Any] = {}
    for path, pattern in _walk(get_resolver().url_patterns, ""):
        if path.lstrip("^").startswith("api/v1/") and pattern.name:
            callbacks.setdefault(pattern.name, pattern.callback)
    names = []
    for name, method in sorted(api_routes()):
        if method != "GET" or (name, method) in EXCLUDED:
            continue
        actions = getattr(callbacks[name], "actions", None)
        if actions is None or actions.get("get") == "list":
            names.append(name)
    return names


LIST_ROUTES = list_routes()
NOT_MODEL_LISTS = {"search", "graph", "graph-path", "case-graph"}  # no filterset, no ordering: parameters of their own
MODEL_LISTS = [name for name in LIST_ROUTES if name not in NOT_MODEL_LISTS]
# Lists whose every filter keeps one value (free text, a boolean, a bound) or that have no filter at all.
NO_FILTER_OF_SEVERAL = {"commodity-list", "case-note-list", "case-share-list", "import-list"}


@dataclass
class World:
    client: APIClient
    case_id: str
    ids: dict[str, Any] = field(default_factory=dict)

    def url(self, name: str) -> str:
        kwargs = {}
        pattern_kwargs = set(re.findall(r"\(\?P<(\w+)>", _route_of(name))) | set(re.findall(r"<(?:\w+:)?(\w+)>",
                                                                                              _route_of(name)))
        for kwarg in pattern_kwargs:
            kwargs[kwarg] = self.case_id
        return reverse(name, kwargs=kwargs)

    def get(self, name: str, params: Any = None) -> Any:
        return self.client.get(self.url(name), params)


def _route_of(name: str) -> str:
    return next(path for (route, _), path in api_routes().items() if route == name)


def build() -> World:
    agency = factories.agency("FLT", "Filters bureau")
    others = [factories.agency(code) for code in ("FLB", "FLC", "FLD")]
    econ, border = factories.unit(agency, "econ"), factories.unit(agency, "border")
    sup = factories.user(agency, "supervisor", econ, username="sup-filters")
    ids: dict[str, Any] = {}

    people = [factories.person(agency, f"Person {c}", nationalities=[c], phones=[f"+86138001380{i}0"],
                               emails=[f"p{i}@example.org"], topics=[topic], lists=[listing],
                               identifiers=[{"scheme": "passport", "number": f"E-12{i}45", "country": c}])
              for i, (c, topic, listing) in enumerate((("CN", "sanction", "ofac-sdn"), ("VN", "crime", "un-sc"),
                                                        ("US", "role.pep", "eu-fsf")))]
    companies = [factories.organization(agency, f"Company {c}", jurisdiction=c, registration_number=f"R-{i}00")
                 for i, c in enumerate(("CN", "VN", "US"))]
    cases = [factories.case(agency, unit, status=status, lead=sup, members=(sup,))
             for status, unit in (("open", econ), ("investigating", border), ("closed", econ))]
    for case_obj, person, company in zip(cases, people, companies, strict=True):
        factories.party(case_obj, person)
        factories.party(case_obj, company)
    for case_obj, code in zip(cases, ("antimony", "gallium", "tungsten"), strict=True):
        case_obj.commodities.set(Commodity.objects.filter(code=code))
    main = cases[0]
    ids["case"] = [str(c.pk) for c in cases]
    ids["person"] = [str(p.pk) for p in people]
    ids["organization"] = [str(o.pk) for o in companies]

    ids["party"] = [str(factories.party(main, factories.person(agency), role=role).pk)
                    for role in ("witness", "victim", "courier")]
    ids["evidence"] = [str(factories.evidence(main, sup, kind=kind).pk) for kind in ("document", "photo", "report")]
    ids["link"] = [str(factories.link(agency, people[0], target, kind=kind).pk)
                   for kind, target in (("associate", people[1]), ("family", people[2]), ("ownership", companies[0]))]
    ids["shipment"] = [str(factories.shipment(
        agency, commodity_id=commodity, hs_code=hs, origin_country=origin, destination_country="DE",
        cases=(case_obj,), consignor=consignor,
        consignee=companies[2], legs=({"from_country": origin, "to_country": transit},
                                      {"from_country": transit, "to_country": "DE"})).pk)
        for commodity, hs, origin, transit, case_obj, consignor in (
            ("antimony", "811010", "CN", "KZ", cases[0], companies[0]),
            ("gallium", "811292", "VN", "TH", cases[1], companies[1]),
            ("tungsten", "810110", "US", "MX", cases[2], people[2]))]
    licences = [factories.licence(agency, holder=holder, status=status, valid_from=dt.date(year, 1, 1),
                                  valid_to=dt.date(year, 12, 31))
                for status, holder, year in (("valid", companies[0], 2020), ("expired", companies[1], 2021),
                                             ("revoked", companies[2], 2022))]
    ids["licence"] = [str(licence.pk) for licence in licences]
    Shipment.objects.filter(pk=ids["shipment"][0]).update(licence=licences[0])
    ids["prosecution"] = [str(factories.prosecution(main, person, stage=stage, court=court).pk)
                          for stage, person, court in (("investigation", people[0], "Court of Appeal, Hong Kong"),
                                                       ("indicted", people[1], "District Court, Hanoi"),
                                                       ("trial", people[2], "Hong Kong Magistrates"))]
    ids["run"] = [str(factories.run(agency, by=sup, status=status).pk) for status in ("queued", "running", "failed")]
    pairs = [factories.person(agency, f"Pair {i}") for i in range(6)]
    ids["match"] = [str(factories.match(pairs[i], pairs[i + 1], status=status).pk)
                    for i, status in ((0, "pending"), (2, "confirmed"), (4, "rejected"))]
    for other in others:
        factories.hits(factories.person(agency, f"Mine {other.code}"), factories.person(other, f"Theirs {other.code}"))
    ids["alert"] = [str(factories.alert(Shipment.objects.get(pk=pk), rule=rule).pk) for pk, rule in zip(
        ids["shipment"], ("unlicensed_export", "licence_exceeded", "value_anomaly"), strict=True)]
    for source in ("ofac-sdn", "un-sc", "eu-fsf"):
        factories.listed(agency, f"Listed {source}", source=source)
    ids["audit"] = [record(action="update", agency=agency, actor=sup, object_type=kind, object_id="1").seq
                    for kind in ("t-alpha", "t-beta", "t-gamma")]
    ImportJob.objects.create(agency=agency, kind="persons", file="imports/filters.csv", status="succeeded")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.token(sup)}")
    return World(client, str(main.pk), ids)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    with tempfile.TemporaryDirectory() as media, built_once(django_db_blocker, build, media_root=media) as built:
        yield built


def rows(world: World, name: str, params: Any) -> set[Any]:
    response = world.get(name, {**dict(params), "page_size": 500} if isinstance(params, dict) else
                         [*params, ("page_size", 500)])
    assert response.status_code == 200, (name, params, response.status_code, response.content[:300])
    return {str(row[KEYS.get(name, "id")]) for row in response.json()["results"]}


# (list, parameter, the two values asked for, the ids they find, the id they must not)
def _representatives(world: World) -> dict[str, tuple[str, tuple[str, str], set[str], str]]:
    ids = world.ids

    def two(kind: str) -> tuple[set[str], str]:
        return {str(ids[kind][0]), str(ids[kind][1])}, str(ids[kind][2])

    hits = {str(hit["id"]): hit["other_agency"]["code"] for hit in world.get("xref-hit-list").json()["results"]}
    watchlists = {row["source"]: str(row["id"]) for row in world.get("watchlist-list").json()["results"]}
    table = {
        "case-list": ("status", ("open", "investigating"), *two("case")),
        "person-list": ("nationality", ("CN", "VN"), *two("person")),
        "organization-list": ("jurisdiction", ("cn", "VN"), *two("organization")),
        "link-list": ("kind", ("associate", "family"), *two("link")),
        "shipment-list": ("origin_country", ("CN", "VN"), *two("shipment")),
        "licence-list": ("status", ("valid", "expired"), *two("licence")),
        "prosecution-list": ("stage", ("investigation", "indicted"), *two("prosecution")),
        "case-party-list": ("role", ("witness", "victim"), *two("party")),
        "case-evidence-list": ("kind", ("document", "PHOTO"), *two("evidence")),
        "xref-run-list": ("status", ("queued", "running"), *two("run")),
        "xref-match-list": ("status", ("pending", "confirmed"), *two("match")),
        "xref-hit-list": ("other_agency", ("FLB", "flc"),
                          {pk for pk, code in hits.items() if code in ("FLB", "FLC")},
                          next(pk for pk, code in hits.items() if code == "FLD")),
        "alert-list": ("rule", ("unlicensed_export", "licence_exceeded"), *two("alert")),
        "watchlist-list": ("source", ("ofac-sdn", "un-sc"), {watchlists["ofac-sdn"], watchlists["un-sc"]},
                           watchlists["eu-fsf"]),
        "audit-list": ("object_type", ("t-alpha", "t-beta"), *two("audit")),
    }
    return table


# --- several values -------------------------------------------------------------------------------------------


def test_every_list_has_a_representative_filter(world):
    """A new list must say which of its filters shows several values at work (or that it has none of several)."""
    missing = set(MODEL_LISTS) - set(_representatives(world)) - NO_FILTER_OF_SEVERAL
    assert not missing, f"lists without a representative filter of several values: {sorted(missing)}"
    assert {"shipment-list", "case-party-list", "audit-list", "xref-hit-list"} <= set(MODEL_LISTS)
    assert set(LIST_ROUTES) >= NOT_MODEL_LISTS


@pytest.mark.parametrize("name", sorted(NO_FILTER_OF_SEVERAL))
def test_lists_said_to_have_no_filter_of_several_values_have_none(name):
    operation = schema_get(name)
    several = [p["name"] for p in operation.get("parameters", [])
               if p["in"] == "query" and p["schema"].get("type") == "array" and p["name"] != "ordering"]
    assert several == [], f"{name} has filters of several values; give it a representative one"


@pytest.mark.parametrize("name", sorted(set(MODEL_LISTS) - NO_FILTER_OF_SEVERAL))
def test_two_values_repeated_or_comma_separated_find_either(world, name):
    param, (first, second), expected, other = _representatives(world)[name]
    assert len(expected) == 2
    everything = rows(world, name, {})
    assert expected | {other} <= everything  # the filter has something to leave out
    assert rows(world, name, [(param, first), (param, second)]) == expected
    assert rows(world, name, {param: f"{first},{second}"}) == expected
    assert rows(world, name, {param: f" {first} , {second} ,"}) == expected
    one = rows(world, name, {param: first})
    assert len(one) == 1 and one < expected


@pytest.mark.parametrize("name", ["shipment-list", "case-list", "person-list"])
def test_the_browsable_api_shows_the_filters_of_several_values(world, name):
    """The browsable API renders each list's filter form with the values asked for."""
    param, (first, second), _, _ = _representatives(world)[name]
    response = world.client.get(world.url(name), [(param, first), (param, second)], HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert first in response.content.decode()


def test_the_finding_origin_cn_or_vn_gives_both_countries_shipments(world):
    cn_or_vn = rows(world, "shipment-list", [("origin_country", "CN"), ("origin_country", "VN")])
    assert cn_or_vn == set(world.ids["shipment"][:2])
    countries = {row["origin_country"] for row in world.get("shipment-list", {"origin_country": "cn,vn"})
                 .json()["results"]}
    assert countries == {"CN", "VN"}


def test_shipment_filters_of_every_kind_take_several_values(world):
    ids = world.ids
    first_two, last = set(ids["shipment"][:2]), {ids["shipment"][2]}
    org = ids["organization"]
    cases = ids["case"]
    assert rows(world, "shipment-list", {"commodity": "antimony,gallium"}) == first_two
    assert rows(world, "shipment-list", {"hs_code": "8110.10,811292"}) == first_two
    assert rows(world, "shipment-list", [("hs_code", "81101"), ("hs_code", "8101")]) == {ids["shipment"][0], *last}
    assert rows(world, "shipment-list", {"transit_country": "kz,TH"}) == first_two
    assert rows(world, "shipment-list", {"destination_country": "DE,FR"}) == set(ids["shipment"])
    assert rows(world, "shipment-list", {"consignor": f"{org[0]},{org[1]}"}) == first_two
    assert rows(world, "shipment-list", [("party", org[0]), ("party", ids["person"][2])]) == {ids["shipment"][0],
                                                                                            *last}
    assert rows(world, "shipment-list", [("party", org[2])]) == set(ids["shipment"])  # the consignee of each
    assert rows(world, "shipment-list", {"case": f"{cases[0]},{cases[1]}"}) == first_two
    assert rows(world, "shipment-list", {"status": "declared", "origin_country": "US,VN"}) == {ids["shipment"][1],
                                                                                            *last}
    # A boolean keeps one value.
    assert rows(world, "shipment-list", {"has_licence": "true"}) == {ids["shipment"][0]}
    assert rows(world, "shipment-list", {"has_licence": "false"}) == set(ids["shipment"][1:])


def test_a_filter_method_of_one_value_is_asked_each_value(world):
    """`valid_on` reads one day; several days are each day's licences, joined."""
    licences = world.ids["licence"]
    assert rows(world, "licence-list", {"valid_on": "2020-06-01"}) == {licences[0]}
    assert rows(world, "licence-list", {"valid_on": "2020-06-01,2021-06-01"}) == set(licences[:2])
    assert rows(world, "licence-list", [("valid_on", "2022-01-01"), ("valid_on", "2021-12-31")]) == set(
        licences[1:])
    assert rows(world, "licence-list", {"valid_on": "2019-06-01,2023-06-01"}) == set()
    response = world.get("licence-list", {"valid_on": "2020-06-01,someday"})
    assert response.status_code == 400 and list(response.json()) == ["valid_on"]


def test_case_filters_of_every_kind_take_several_values(world):
    ids = world.ids
    first_two = set(ids["case"][:2])
    assert rows(world, "case-list", {"person": f"{ids['person'][0]},{ids['person'][1]}"}) == first_two
    assert rows(world, "case-list", [("organization", ids["organization"][0]),
                                     ("organization", ids["organization"][1])]) == first_two
    assert rows(world, "case-list", {"commodity": "antimony,gallium"}) == first_two
    assert rows(world, "case-list", {"unit": "border,nowhere"}) == {ids["case"][1]}
    assert rows(world, "case-list", {"lead": "sup-filters"}) == set(ids["case"])
    # The person filter reads persons only: an organisation's id finds nothing.
    assert rows(world, "case-list", {"person": ids["organization"][0]}) == set()


def test_entity_filters_of_every_kind_take_several_values(world):
    ids = world.ids
    people, first_two = ids["person"], set(ids["person"][:2])
    assert rows(world, "person-list", {"case": f"{ids['case'][0]},{ids['case'][1]}"}) & set(people) == first_two
    assert rows(world, "person-list", {"identifier": "E12045,e-12145"}) == first_two
    assert rows(world, "person-list", [("email", "P0@example.org"), ("email", "p1@example.org")]) == first_two
    assert rows(world, "person-list", {"phone": "+86 138 0013 8000,+8613800138010"}) == first_two
    assert rows(world, "person-list", {"topic": "SANCTION,crime"}) & set(people) == first_two
    assert rows(world, "person-list", {"list": "ofac-sdn,un-sc"}) & set(people) == first_two
    assert rows(world, "person-list", {"birth_date": "2001-01-01,2002-02-02"}) == set()
    orgs = ids["organization"]
    assert rows(world, "organization-list", {"registration_number": "R000,r-100"}) == set(orgs[:2])
    assert rows(world, "organization-list", {"kind": "company,bank"}) & set(orgs) == set(orgs)
    assert rows(world, "link-list", {"entity": f"{orgs[0]},{people[1]}"}) == {ids["link"][0], ids["link"][2]}


def test_a_bad_value_among_several_is_a_400_naming_the_filter(world):
    response = world.get("shipment-list", {"party": f"{world.ids['organization'][0]},not-a-uuid"})
    assert response.status_code == 400 and list(response.json()) == ["party"], response.json()
    response = world.get("case-list", [("status", "open"), ("status", "bogus")])
    assert response.status_code == 400 and list(response.json()) == ["status"], response.json()
    response = world.get("person-list", {"nationality": "CN,XX"})
    assert response.status_code == 400 and list(response.json()) == ["nationality"], response.json()
    response = world.get("shipment-list", {"hs_code": "8110,abc"})
    assert response.status_code == 400 and list(response.json()) == ["hs_code"], response.json()
    too_many = ",".join(str(uuid.UUID(int=i)) for i in range(1, 102))
    response = world.get("shipment-list", {"party": too_many})
    assert response.status_code == 400 and response.json() == {"party": ["At most 100 values."]}


def test_free_text_keeps_its_commas_and_ranges_keep_one_value(world):
    ids = world.ids
    # A fuzzy name and `q` are one text each: the comma is part of it, not a second value.
    assert rows(world, "prosecution-list", {"q": "Court of Appeal, Hong Kong"}) == {ids["prosecution"][0]}
    assert rows(world, "person-list", {"q": "Person CN,Person VN"}) == set()
    # A substring filter takes several values repeated; a comma is part of the text it looks for.
    assert rows(world, "prosecution-list", {"court": "Court of Appeal, Hong Kong"}) == {ids["prosecution"][0]}
    assert rows(world, "prosecution-list", [("court", "Appeal, Hong"), ("court", "Hanoi")]) == set(
        ids["prosecution"][:2])
    # A bound is one value: two of them is not "either".
    response = world.get("shipment-list", {"quantity_min": "1,2"})
    assert response.status_code == 400 and list(response.json()) == ["quantity_min"]


# --- unknown parameters and ordering --------------------------------------------------------------------------


@pytest.mark.parametrize("name", LIST_ROUTES)
def test_an_unknown_parameter_is_a_400_naming_it(world, name):
    response = world.get(name, {UNKNOWN: "1000"})
    assert response.status_code == 400, (name, response.status_code, response.content[:300])
    assert response.json()[UNKNOWN] == ["Unknown query parameter."]


@pytest.mark.parametrize("name", ["case-timeline", "case-detail", "case-evidence-download", "audit-verify",
                                  "import-errors"])
def test_an_unknown_parameter_of_a_record_or_its_action_is_a_400(world, name):
    kwargs: dict[str, Any] = {"pk": world.case_id}
    if name == "case-evidence-download":
        kwargs = {"case_pk": world.case_id, "pk": world.ids["evidence"][0]}
    elif name == "audit-verify":
        kwargs = {}
    elif name == "import-errors":
        kwargs = {"pk": ImportJob.objects.get(file="imports/filters.csv").pk}
    url = reverse(name, kwargs=kwargs)
    assert world.client.get(url, {"page": 1} if name != "case-evidence-download" else {}).status_code == 200
    response = world.client.get(url, {UNKNOWN: "1000", "page_size": 5})
    assert response.status_code == 400 and response.json() == {UNKNOWN: ["Unknown query parameter."]}


def test_the_unknown_parameters_and_bad_filters_are_named_together(world):
    response = world.get("shipment-list", {UNKNOWN: "1", "origin_country": "CN", "status": "nope", "other": ""})
    assert response.status_code == 400
    assert set(response.json()) == {UNKNOWN, "other", "status"}


def test_without_credentials_an_unknown_parameter_is_still_a_401(world):
    anonymous = APIClient()
    for name in ("shipment-list", "search", "case-timeline"):
        url = world.url(name)
        assert anonymous.get(url, {UNKNOWN: "1"}).status_code == 401, name


@pytest.mark.parametrize("name", MODEL_LISTS)
def test_ordering_by_an_unknown_field_is_a_400_naming_ordering(world, name):
    allowed = ordering_enum(name)
    response = world.get(name, {"ordering": "bogus"})
    assert response.status_code == 400, (name, response.status_code)
    [message] = response.json()["ordering"]
    assert message.startswith("Unknown ordering field: bogus. Allowed: "), message
    assert all(value.lstrip("-") in message for value in allowed)
    response = world.get(name, {"ordering": f"{allowed[0]},-bogus"})
    assert response.status_code == 400 and "-bogus" in response.json()["ordering"][0]


@pytest.mark.parametrize("name", MODEL_LISTS)
def test_every_allowed_ordering_sorts(world, name):
    key = KEYS.get(name, "id")
    everything = rows(world, name, {})
    for value in ordering_enum(name):
        response = world.get(name, {"ordering": value, "page_size": 500})
        assert response.status_code == 200, (name, value, response.content[:200])
        assert {str(row[key]) for row in response.json()["results"]} == everything, (name, value)
    two = ordering_enum(name)[:4:3]  # a field ascending, another descending
    assert world.get(name, [("ordering", two[0]), ("ordering", two[-1])]).status_code == 200
    assert world.get(name, {"ordering": ",".join(two)}).status_code == 200


def test_ordering_orders(world):
    ids = world.ids
    ascending = [row["id"] for row in world.get("licence-list", {"ordering": "number"}).json()["results"]]
    descending = [row["id"] for row in world.get("licence-list", [("ordering", "-number")]).json()["results"]]
    assert ascending == descending[::-1] and set(ascending) == set(ids["licence"])


def test_search_types_take_several_values(world):
    one = world.get("search", {"q": "Person", "type": "person"}).json()["results"]
    both = world.get("search", [("q", "Person"), ("type", "person"), ("type", "case")]).json()["results"]
    assert {hit["type"] for hit in one} == {"person"}
    assert {hit["type"] for hit in both} <= {"person", "case"} and len(both) >= len(one)
    assert world.get("search", {"q": "Person", "type": "person,case"}).json()["results"] == both


# --- the schema -----------------------------------------------------------------------------------------------


_SCHEMA: dict[str, Any] = {}


def schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    if not _SCHEMA:
        _SCHEMA.update(SchemaGenerator().get_schema(request=None, public=True))
    return _SCHEMA


def schema_path(name: str) -> str:
    from rest_framework.schemas.generators import EndpointEnumerator

    return EndpointEnumerator().get_path_from_regex("/" + _route_of(name).replace("^", "").replace("$", "")) \
        .replace("{pk}", "{id}")


def schema_get(name: str) -> dict[str, Any]:
    return schema()["paths"][schema_path(name)]["get"]


def ordering_enum(name: str) -> list[str]:
    [ordering] = [p for p in schema_get(name)["parameters"] if p["name"] == "ordering"]
    return list(ordering["schema"]["items"]["enum"])


def schema_lists() -> list[str]:
    """The schema's list operations: GETs answering a page of results."""
    found = []
    for path, operations in schema()["paths"].items():
        get = operations.get("get")
        if not get:
            continue
        body = get["responses"]["200"].get("content", {}).get("application/json", {}).get("schema", {})
        ref = body.get("$ref", "")
        component = schema()["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref else body
        if "results" in component.get("properties", {}):
            found.append(path)
    return found


def view_of(path: str) -> Any:
    match = resolve(re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path))
    view = match.func.cls(**getattr(match.func, "initkwargs", {}))  # type: ignore[attr-defined]
    view.action = getattr(match.func, "actions", {}).get("get")
    view.kwargs, view.request = match.kwargs, None
    return view


@pytest.mark.parametrize("path", schema_lists())
def test_the_schema_lists_every_filter_and_an_ordering_enum(path):
    from core.api.filters import AnyOfFilter, FilterBackend, StableOrdering, is_list

    operation = schema()["paths"][path]["get"]
    parameters = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
    view = view_of(path)
    # A record's paged action (the timeline, an import's errors) takes no list's filters nor ordering.
    backends = list(getattr(view, "filter_backends", [])) if is_list(view) else []
    if any(issubclass(b, FilterBackend) for b in backends):
        filterset = FilterBackend().get_filterset_class(view, view.queryset)
        for name, filter_ in (filterset.base_filters.items() if filterset else ()):
            assert name in parameters, (path, name)
            schema_ = parameters[name]["schema"]
            if isinstance(filter_, AnyOfFilter):
                assert schema_["type"] == "array" and parameters[name]["explode"] is True, (path, name)
                assert "Several values" in parameters[name]["description"], (path, name)
            elif name in ("q", "name"):
                assert schema_["type"] == "string"
                assert "commas are part of the text" in parameters[name]["description"], (path, name)
    if any(issubclass(b, StableOrdering) for b in backends):
        allowed = [field_ for field_, _ in StableOrdering().get_valid_fields(view.queryset, view, {"request": None})]
        enum = parameters["ordering"]["schema"]["items"]["enum"]
        assert sorted(enum) == sorted([*allowed, *(f"-{field_}" for field_ in allowed)]), path
    else:
        assert "ordering" not in parameters, path


def test_the_schema_lists_are_the_resolvers_lists():
    assert {schema_path(name) for name in [*MODEL_LISTS, "search", "case-timeline", "import-errors"]} == \
        set(schema_lists())


def test_ranges_booleans_and_free_text_are_one_value_in_the_schema():
    shipments = {p["name"]: p for p in schema_get("shipment-list")["parameters"]}
    for name in ("quantity_min", "quantity_max", "departed_after", "departed_before", "created_after"):
        assert shipments[name]["schema"]["type"] != "array", name
    assert shipments["origin_country"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert shipments["party"]["schema"] == {"type": "array", "items": {"type": "string", "format": "uuid"}}
    persons = {p["name"]: p for p in schema_get("person-list")["parameters"]}
    assert persons["name"]["schema"] == {"type": "string"} and persons["q"]["schema"] == {"type": "string"}
    commodities = {p["name"]: p for p in schema_get("commodity-list")["parameters"]}
    assert commodities["licence_required"]["schema"]["type"] == "boolean"
