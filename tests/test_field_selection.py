"""`?fields=a,b` and `?brief=true` on every list and detail (API.md § Basics), from the client's side: only the
fields asked for, a 400 naming an unknown one, and no query for the fields left out."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver

from core.api.http import HttpHabitsMixin
from imports.models import ImportJob

from . import factories
from .access_routes import EXCLUDED, _walk, api_routes

LABELS = ("name", "reference")


def _view(pattern_name: str) -> Any:
    callback: Any = next(p for _, p in _walk(get_resolver().url_patterns, "") if p.name == pattern_name).callback
    return callback.cls


# Every list route of the API whose view answers a serializer's records (search and graph answer mixed shapes).
LIST_ROUTES = sorted((name, pattern) for (name, method), pattern in api_routes().items()
                     if method == "GET" and name.endswith("-list") and issubclass(_view(name), HttpHabitsMixin))


@pytest.fixture
def stage(world, supervisor, tmp_path, settings):
    """One record of every resource of agency A, as its supervisor sees them."""
    settings.MEDIA_ROOT = str(tmp_path)
    case = factories.case(world.a, world.a1, lead=supervisor)
    person = factories.person(world.a, "Li Wei")
    org = factories.organization(world.a, "Grey Ore Trading")
    theirs = factories.person(world.b, "Li Wei")
    factories.party(case, person)
    factories.note(case, supervisor)
    factories.share(case, world.b)
    factories.link(world.a, person, org)
    shipment = factories.shipment(world.a, legs=({"from_country": "CN", "to_country": "VN"},), cases=(case,),
                                  consignor=org)
    factories.licence(world.a, org)
    factories.prosecution(case, person, charges=(("s1", "smuggling"),))
    factories.evidence(case, supervisor)
    factories.run(world.a, supervisor)
    factories.hits(person, theirs)
    factories.match(person, factories.person(world.a, "Li Wey"))
    factories.alert(shipment)
    factories.listed(world.a, "Sanctioned Ltd")
    ImportJob.objects.create(agency=world.a, kind="persons", source="test", created_by=supervisor,
                             file=ContentFile(b"name\n", name="people.csv"))
    return {"case_pk": str(case.pk)}


@pytest.fixture
def sup_api(client_for, supervisor):
    return client_for(supervisor)


def _url(pattern: str, kwargs: dict[str, str]) -> str:
    path = "/" + pattern.replace("^", "").replace("$", "")
    for name, value in kwargs.items():
        path = path.replace(f"(?P<{name}>[0-9a-fA-F-]{{36}})", value)
    return path


def _rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


@pytest.mark.parametrize(("name", "pattern"), LIST_ROUTES)
def test_fields_and_brief_on_every_list_and_its_details(sup_api, stage, name, pattern):
    url = _url(pattern, stage)
    full = _rows(sup_api.get(url))
    assert full, f"{name}: the stage has no record to list"
    record = full[0]
    chosen = list(record)[-2:]  # any two of its fields, in the serializer's order
    picked = _rows(sup_api.get(url, {"fields": ",".join(chosen)}))
    assert [list(row) for row in picked] == [chosen] * len(full)
    assert [{key: row[key] for key in chosen} for row in full] == picked

    view = _view(name)
    ident = "id" if "id" in record else view.lookup_field
    label = next((field for field in LABELS if field in record), None)
    brief = _rows(sup_api.get(url, {"brief": "true"}))
    assert [set(row) for row in brief] == [{ident, "url", *([label] if label else [])}] * len(full)
    assert [row[ident] for row in brief] == [row[ident] for row in full]

    # Each brief `url` is the record's detail, which answers fields and brief alike.
    detail_url = brief[0]["url"]
    assert detail_url.startswith("http://testserver/api/v1/")
    detail = sup_api.get(detail_url)
    assert detail.status_code == 200
    assert detail.json() == record
    assert sup_api.get(detail_url, {"fields": ",".join(chosen)}).json() == {key: record[key] for key in chosen}
    assert sup_api.get(detail_url, {"brief": "1"}).json() == brief[0]
    with_fields = sup_api.get(detail_url, {"brief": "true", "fields": chosen[-1]}).json()
    assert set(with_fields) == {ident, "url", chosen[-1], *([label] if label else [])}


@pytest.mark.parametrize(("name", "pattern"), LIST_ROUTES)
def test_an_unknown_field_is_a_400_naming_it(sup_api, stage, name, pattern):
    url = _url(pattern, stage)
    response = sup_api.get(url, {"fields": "bogus,nope"})
    assert response.status_code == 400
    messages = response.json()["fields"]
    assert [message.split(".")[0] for message in messages] == ["Unknown field: bogus", "Unknown field: nope"]
    assert "Allowed: " in messages[0]
    detail_url = _rows(sup_api.get(url, {"brief": "true"}))[0]["url"]
    assert sup_api.get(detail_url, {"fields": "bogus"}).status_code == 400
    assert sup_api.get(url, {"brief": "perhaps"}).json() == {"brief": ["Must be true or false."]}


def test_brief_false_and_empty_fields_answer_the_whole_record(sup_api, stage):
    full = _rows(sup_api.get("/api/v1/persons/"))
    assert _rows(sup_api.get("/api/v1/persons/", {"brief": "false"})) == full
    assert _rows(sup_api.get("/api/v1/persons/", {"fields": ""})) == full


def test_fields_repeated_or_comma_separated(sup_api, stage):
    repeated = _rows(sup_api.get("/api/v1/persons/?fields=id&fields=name"))
    joined = _rows(sup_api.get("/api/v1/persons/", {"fields": "name, id"}))
    assert repeated == joined
    assert [list(row) for row in repeated] == [["id", "name"]] * len(repeated)


# --- what the fields left out cost ---------------------------------------------------------------------------


def _captured(client: Any, url: str, params: dict[str, str] | None = None) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries]


def _queries(client: Any, url: str, params: dict[str, str] | None = None) -> int:
    return len(_captured(client, url, params))


def _grow(world: Any, supervisor: Any, resource: str, rows: int) -> None:
    """`rows` more records of `resource`, each with the related rows its serializer prefetches."""
    case = factories.case(world.a, world.a1, lead=supervisor, members=(supervisor,))
    for _ in range(rows):
        person = factories.person(world.a)
        if resource == "persons":
            factories.party(case, person)
        elif resource == "shipments":
            factories.shipment(world.a, legs=({"from_country": "CN", "to_country": "VN"},), cases=(case,),
                               consignee=person)
        elif resource == "cases":
            factories.case(world.a, world.a1, lead=supervisor, members=(supervisor,), commodities=("antimony",))
        elif resource == "prosecutions":
            factories.prosecution(case, person, charges=(("s1", "smuggling"),))


# Each resource, and the queries its full list makes beyond `fields=id`'s: the prefetches (and page-wide lookups)
# of the fields left out. A person's cases, and whether it is in an identity cluster, are columns of the page's
# own query (none of these persons is in one, so `same_as` looks nothing up): see the next test; so are a case's
# members and commodities.
SAVED = {"persons": 0, "shipments": 2, "cases": 0, "prosecutions": 1}


@pytest.mark.parametrize("resource", sorted(SAVED))
def test_fields_left_out_cost_no_query_and_brief_does_not_grow_with_rows(sup_api, world, supervisor, resource):
    url = f"/api/v1/{resource}/"
    _grow(world, supervisor, resource, 2)
    _queries(sup_api, "/api/v1/auth/me/")  # the token's first use of the minute writes its last_used_at
    full, only_id, brief = (_queries(sup_api, url), _queries(sup_api, url, {"fields": "id"}),
                            _queries(sup_api, url, {"brief": "true"}))
    assert full - only_id == SAVED[resource]
    assert brief == only_id
    _grow(world, supervisor, resource, 5)
    assert _queries(sup_api, url, {"brief": "true"}) == brief
    assert _queries(sup_api, url, {"fields": "id"}) == only_id
    assert _queries(sup_api, url) == full


def test_the_cases_of_persons_are_a_column_of_the_page_query_and_left_out_with_their_field(sup_api, world,
                                                                                          supervisor):
    """`cases` of persons is a subquery in the page's own query: no query of its own, however many rows, and
    not in the query at all when `fields` leaves it out (nor `same_as`'s cluster column)."""
    _grow(world, supervisor, "persons", 2)
    _queries(sup_api, "/api/v1/auth/me/")  # the token's first use of the minute writes its last_used_at
    few = _captured(sup_api, "/api/v1/persons/", {"fields": "id,cases"})
    _grow(world, supervisor, "persons", 5)
    assert len(_captured(sup_api, "/api/v1/persons/", {"fields": "id,cases"})) == len(few)
    assert len(_captured(sup_api, "/api/v1/persons/", {"fields": "id"})) == len(few)
    # (The caller's scope may read case parties too: the cases column is the one that is an array. Its JSON objects
    # are JSONB_BUILD_OBJECT or JSON_OBJECT by PostgreSQL's version.)
    assert any('ARRAY(SELECT' in sql and "cases_caseparty" in sql for sql in few)
    assert not any("ARRAY(SELECT" in sql or "xref_identitymember" in sql
                   for sql in _captured(sup_api, "/api/v1/persons/", {"fields": "id"}))
    assert any("xref_identitymember" in sql for sql in _captured(sup_api, "/api/v1/persons/", {"fields": "id,same_as"}))
    rows = _rows(sup_api.get("/api/v1/persons/", {"fields": "id,cases"}))
    assert sum(len(row["cases"]) for row in rows) == 7


# --- the schema says so ----------------------------------------------------------------------------------------


def _schema_name(parameter: Any) -> str:
    return "id" if parameter == "pk" else parameter  # drf-spectacular names a `pk` by its model field


def test_the_schema_documents_selection_on_every_list_and_detail_and_idempotency_on_every_post(client_for,
                                                                                                 investigator):
    schema = client_for(investigator).get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    selectable, posts = [], []
    for (name, method), pattern in api_routes().items():
        view = _view(name)
        path = "/" + pattern.replace("^", "").replace("$", "").removeprefix("api/v1/")
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>",
                      lambda m: "{" + _schema_name(m.group(1) or m.group(2)) + "}", path)
        if "/api/v1" + path not in schema["paths"]:
            assert (name, method) in EXCLUDED, name  # the schema and its pages do not describe themselves
            continue
        operation = schema["paths"]["/api/v1" + path][method.lower()]
        parameters = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        if method == "GET" and issubclass(view, HttpHabitsMixin) and name.endswith(("-list", "-detail")):
            assert {("query", "fields"), ("query", "brief")} <= parameters, name
            selectable.append(name)
            answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
            if name.endswith("-list"):
                answer = components[answer["$ref"].rsplit("/", 1)[-1]]["properties"]["results"]["items"]
            whole, selected = (ref["$ref"].rsplit("/", 1)[-1] for ref in answer["anyOf"])
            assert selected == f"{whole}Fields"
            assert "required" not in components[selected]
            if "ETag" in operation["responses"]["200"].get("headers", {}):
                assert ("header", "If-None-Match") in parameters, name
                assert "304" in operation["responses"], name
        if method == "POST" and name != "auth-tokens":
            assert ("header", "Idempotency-Key") in parameters, name
            assert {"409", "422"} <= set(operation["responses"]), name
            posts.append(name)
    assert sorted(name for name in selectable if name.endswith("-list")) == [name for name, _ in LIST_ROUTES]
    assert len(posts) == len([route for route in api_routes() if route[1] == "POST"]) - 1  # all but sign-in
