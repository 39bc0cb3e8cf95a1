"""Hostile values in every filter of every list: a 400 naming the parameter where the value is bad, never a 500.

Nothing here is a hand-kept list of endpoints or filters. The lists are the API's own schema's (every GET
operation with query parameters under /api/v1/, nested case lists, the timeline and the audit trail included);
each list's filters come from the filterset its view's filter backend uses (a record's paged action, the
timeline, takes none: a list's filters do not apply to a record). Each filter is sorted into a
kind by its filter and form field classes; a filter of a kind this module does not know fails
`test_every_filter_is_of_a_known_kind`, so a new filter type cannot arrive untested.

For each (list, parameter) every hostile value is sent, alone and repeated. The answer is never a 500; a
value that is bad for the filter's kind is a 400 of DRF's shape naming that parameter alone
(`{"param": ["message"]}`); a good one is a 200. A filter of several values (API.md § Basics) judges each of
its values (repeated, or comma-separated where commas separate): one bad value is a 400. Parameters of the schema
that are not filters (`page`, `ordering`, the search and graph parameters) are held to "never a 500" only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django import forms
from django.db import transaction
from django.urls import resolve
from django_filters import filters
from django_filters.filterset import BaseFilterSet
from rest_framework.test import APIClient

from core.api.filters import AnyOfFilter, is_list
from imports.models import ImportJob, ImportRowError

from . import factories
from .stages import built_once

pytestmark = pytest.mark.django_db

API = "/api/v1/"
MAX_TEXT = 1000  # core.api.filters.MAX_TEXT: the longest text a filter takes

# The kinds of filter this module knows: the first class the filter is an instance of names its kind; its form
# field must be an instance of the field class beside it (a filter that swaps in another field is a new kind).
KINDS: list[tuple[type[filters.Filter], str, type[forms.Field]]] = [
    (filters.IsoDateTimeFilter, "datetime", forms.DateTimeField),
    (filters.DateTimeFilter, "datetime", forms.DateTimeField),
    (filters.DateFilter, "date", forms.DateField),
    (filters.UUIDFilter, "uuid", forms.UUIDField),
    (filters.NumberFilter, "number", forms.DecimalField),
    (filters.BooleanFilter, "bool", forms.Field),  # its field is replaced by a strict one in the base
    (filters.MultipleChoiceFilter, "choices", forms.MultipleChoiceField),
    (filters.ChoiceFilter, "choice", forms.ChoiceField),
    (filters.CharFilter, "text", forms.CharField),
]

U = str(uuid.UUID(int=0x1234_5678_9ABC_4DEF_8123_4567_89AB_CDEF))
OUT_OF_RANGE_OFFSET = "2026-01-01T00:00:00+22:17"


@dataclass(frozen=True)
class Hostile:
    """A value (a tuple when the parameter is repeated) and, for one value, the kinds it is good for."""

    value: str | tuple[str, ...]
    good_for: frozenset[str] = frozenset()
    label: str = ""

    def __str__(self) -> str:
        return self.label or repr(self.value)[:40]


def hostile(value: str | tuple[str, ...], *good_for: str, label: str = "") -> Hostile:
    return Hostile(value, frozenset(good_for), label)


HOSTILE: list[Hostile] = [
    hostile("%", "text"), hostile("%25", "text"), hostile("'", "text"), hostile('"', "text"),
    hostile("\\", "text"), hostile("'; DROP TABLE cases_case; --", "text"),
    hostile("\x00", label="NUL"), hostile("a\x00b", label="NUL inside"),
    hostile("x" * 10_000, label="10,000 characters"), hostile("x" * (MAX_TEXT + 1), label="just too long"),
    hostile("y" * MAX_TEXT, "text", label="the longest text"),
    hostile("99999999999999999999999", "text", "number"), hostile("-1", "text", "number"),
    hostile("0", "text", "number", "bool"), hostile("1e309", "text"), hostile("NaN", "text"),
    hostile("-Infinity", "text"), hostile("1e-5000", "text"), hostile("abc", "text"),
    hostile("2026-13-45", "text"), hostile("2026-02-30", "text"),
    hostile("2026-01-01", "text", "date", "datetime"), hostile("0001-01-01", "text", "date", "datetime"),
    hostile(OUT_OF_RANGE_OFFSET, "text"), hostile("2026-01-01T00:00:00-23:59", "text"),
    hostile("2026-01-01T00:00:00+14:00", "text", "datetime"), hostile("2026-01-01T00:00:00-12:00", "text", "datetime"),
    hostile("2026-01-01T25:00", "text"), hostile("2026-01-01T00:00:00+05:30:15", "text", "datetime"),
    hostile("0001-01-01T00:00:00+01:00", "text"), hostile("9999-12-31T23:59:59-01:00", "text"),
    hostile("not-a-uuid", "text"), hostile(U, "text", "uuid"), hostile(U[:-1], "text"), hostile(U + "0", "text"),
    hostile(f"person:{U}", "text"), hostile("person:not-a-uuid", "text"), hostile(f"organization:{U}:x", "text"),
    hostile(f"nope:{U}", "text"), hostile(":", "text"),
    hostile("true", "text", "bool"), hostile("False", "text", "bool"), hostile("maybe", "text"),
    hostile(",", "text"), hostile("a,b", "text"), hostile("", label="empty"),
    hostile((U, U), label="a uuid repeated"), hostile(("x", U), label="repeated, the last a uuid"),
    hostile((U, "not-a-uuid"), label="repeated, the last bad"),
    hostile(("2026-01-01", OUT_OF_RANGE_OFFSET), label="repeated, the last out of range"),
]

# What each single value is good for, which judges the repeated values part by part.
GOOD_FOR = {h.value: h.good_for for h in HOSTILE if isinstance(h.value, str)}


# --- discovery ------------------------------------------------------------------------------------


@dataclass
class Stage:
    client: APIClient
    case_id: str
    import_id: str


def build() -> Stage:
    agency = factories.agency("SSB", "State Security Bureau")
    unit = factories.unit(agency, "econ")
    sup = factories.user(agency, "supervisor", unit, username="sup-hostile")  # reads the audit trail too
    case = factories.case(agency, unit, lead=sup, members=(sup,))
    factories.party(case, factories.person(agency, nationalities=["CN"], phones=["+8613800138000"]))
    factories.note(case, sup)
    job = ImportJob.objects.create(agency=agency, kind="persons", file="imports/hostile.csv", status="succeeded")
    ImportRowError.objects.create(job=job, row=1, field="name", message="This field is required.")
    client = APIClient(raise_request_exception=False)  # an unhandled error is an answer to check, a 500
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.token(sup)}")
    return Stage(client, str(case.pk), str(job.pk))


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker) -> Iterator[Stage]:
    with built_once(django_db_blocker, build) as built:
        yield built


def schema() -> dict[str, Any]:
    """The OpenAPI document, built without a request (the same generator the schema view uses)."""
    from drf_spectacular.generators import SchemaGenerator

    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
    return _SCHEMA


_SCHEMA: dict[str, Any] | None = None


def concrete(path: str, case_id: str, import_id: str | None = None) -> str:
    """The path with its parameters filled: every parameterised GET list hangs off a case, or an import (its
    errors)."""
    import re

    if path.startswith(f"{API}imports/{{"):
        return re.sub(r"\{[^}]+\}", import_id or case_id, path)
    assert path.startswith(f"{API}cases/{{") or "{" not in path, f"a list under a new parent: {path}"
    return re.sub(r"\{[^}]+\}", case_id, path)


def get_lists() -> list[tuple[str, list[dict[str, Any]]]]:
    """(path template, query parameters) of every GET operation under the API that takes query parameters."""
    found = []
    for path, operations in schema()["paths"].items():
        get = operations.get("get")
        if not path.startswith(API) or not get:
            continue
        # `fields` and `brief` shape any answer, a record's too (tests/test_field_selection.py): not a list's filters.
        params = [p for p in get.get("parameters", []) if p["in"] == "query" and p["name"] not in ("fields", "brief")]
        if params:
            found.append((path, params))
    return found


def filterset_of(path: str) -> type[BaseFilterSet] | None:
    """The filterset the view's own filter backends apply to the list at `path`."""
    match = resolve(concrete(path, str(uuid.uuid4())))
    view_class = match.func.cls  # type: ignore[attr-defined]
    view = view_class(**getattr(match.func, "initkwargs", {}))
    view.action = getattr(match.func, "actions", {}).get("get")
    view.kwargs = match.kwargs
    if not is_list(view):
        return None
    queryset = getattr(view_class, "queryset", None)
    found = None
    for backend in getattr(view, "filter_backends", []):
        get_class = getattr(backend(), "get_filterset_class", None)
        if get_class is not None:
            found = get_class(view, queryset) or found
    return found


def kind_of(filter_: filters.Filter) -> str | None:
    if isinstance(filter_, AnyOfFilter):  # several values of its inner filter's kind
        kind = kind_of(filter_.inner)
        return "choices" if kind == "choice" else kind
    for filter_class, kind, field_class in KINDS:
        if isinstance(filter_, filter_class):
            return kind if isinstance(filter_.field, field_class) else None
    return None


def lists() -> list[Any]:
    """One case per list: its path, its filters by name, and its other query parameters."""
    found = []
    for path, query in get_lists():
        filterset = filterset_of(path)
        declared = dict(filterset.base_filters) if filterset else {}
        others = [p["name"] for p in query if p["name"] not in declared]
        found.append(pytest.param(path, declared, others, id=path))
    return found


LISTS = lists()


# --- the tests ------------------------------------------------------------------------------------


def test_the_discovery_finds_every_list():
    """The lists the schema declares include the nested ones, the timeline and the audit trail; those with filters
    have them (the timeline has none: it is a page of one case's entries)."""
    paths = {path for path, _ in get_lists()}
    for expected in ("cases/", "cases/{case_pk}/parties/", "cases/{case_pk}/evidence/", "cases/{id}/timeline/",
                     "audit/", "persons/", "organizations/", "links/", "shipments/", "licences/", "prosecutions/",
                     "commodities/", "xref/matches/", "xref/runs/"):
        assert API + expected in paths, expected
    filtered = {path for path, _ in get_lists() if filterset_of(path)}
    assert {API + "audit/", API + "cases/{case_pk}/parties/", API + "xref/matches/"} <= filtered
    assert API + "cases/{id}/timeline/" not in filtered


def test_every_filter_is_of_a_known_kind():
    """A filter whose class or form field this module has no hostile-value rule for must be given one here."""
    unknown = []
    for path, _ in get_lists():
        filterset = filterset_of(path)
        for name, filter_ in (filterset.base_filters.items() if filterset else ()):
            if kind_of(filter_) is None:
                unknown.append(f"{path}?{name}: {type(filter_).__name__} ({type(filter_.field).__name__})")
    assert not unknown, "filters without a hostile-value rule (add their kind to KINDS): " + ", ".join(unknown)


def test_every_filter_is_in_the_schema():
    """The schema's parameters, which the tests walk, hold every filter of every list."""
    for path, query in get_lists():
        filterset = filterset_of(path)
        names = {p["name"] for p in query}
        missing = set(filterset.base_filters if filterset else ()) - names
        assert not missing, (path, missing)


def several(filter_: filters.Filter) -> str | None:
    """How a filter takes several values: `split` (repeated or comma-separated), `repeated`, or None (one)."""
    if isinstance(filter_, filters.MultipleChoiceFilter):
        return "split"
    if isinstance(filter_, AnyOfFilter):
        return "split" if filter_.split_commas else "repeated"
    return None


def choice_values(filter_: filters.Filter) -> list[Hostile]:
    """Values around a choice filter's own choices (each is judged against every filter's own choices)."""
    field = filter_.inner.field if isinstance(filter_, AnyOfFilter) else filter_.field
    choices = [str(value) for value, _ in field.choices if value != ""]
    assert choices, filter_
    first, last = choices[0], choices[-1]
    other_case = first.upper() if first.upper() != first else first.lower()
    return [hostile(v) for v in (first, f"{first},{last}", f"{first},bogus", (first, last), (first, "bogus"),
                                 ("bogus", first), other_case, (first, ""))]


def good_part(kind: str, filter_: filters.Filter, part: str) -> bool:
    """Whether one value is good for a filter of `kind` (empty is no filter: good)."""
    if part == "":
        return True
    if kind in ("choice", "choices"):
        field = filter_.inner.field if isinstance(filter_, AnyOfFilter) else filter_.field
        return part in {str(choice) for choice, _ in field.choices}
    return kind in GOOD_FOR.get(part, frozenset({"text"}))


def expect(kind: str | None, filter_: filters.Filter | None, value: Hostile) -> str:
    """`ok` (200), `bad` (400 naming the parameter) or `either` (200, or 400 naming the parameter)."""
    if kind is None or filter_ is None:
        return "either"
    parts = list(value.value) if isinstance(value.value, tuple) else [value.value]
    if several(filter_) is not None:
        if several(filter_) == "split":
            parts = [part.strip() for one in parts for part in one.split(",")]
        parts = [part for part in parts if part.strip()]  # blanks are no value
        if kind == "text":
            if any("\x00" in part or len(part) > MAX_TEXT for part in parts):
                return "bad"
            plain = type(filter_.inner.field) is forms.CharField and filter_.inner.method is None
            return "ok" if plain else "either"
        if kind == "choices":
            return "ok" if all(good_part(kind, filter_, part) for part in parts) else "bad"
        if all(good_part(kind, filter_, part) for part in parts):
            return "ok"
        return "bad"
    if kind == "text":
        last = parts[-1]
        if "\x00" in last or len(last) > MAX_TEXT:
            return "bad"
        # A text filter whose field normalises its value (countries, phones) may refuse it.
        return "ok" if type(filter_.field) is forms.CharField and filter_.method is None else "either"
    goods = [good_part(kind, filter_, part) for part in parts]
    if all(goods):
        return "ok"
    if kind in ("choice", "choices") and all(all(good_part(kind, filter_, p) for p in part.split(","))
                                             for part, good in zip(parts, goods, strict=True) if not good):
        return "either"  # comma-separated choices: API.md reads them as "any of them"
    if kind == "choices" or not goods[-1]:
        return "bad"
    # A filter of one value takes the last one given today; read as "any of them" the others would count too.
    return "either"


def params_of(names: Iterable[str], value: Hostile) -> dict[str, Any]:
    sent = list(value.value) if isinstance(value.value, tuple) else value.value
    return {name: sent for name in names}


def get(stage: Stage, url: str, params: dict[str, Any]) -> tuple[int, Any]:
    with transaction.atomic():  # a database error must not poison the requests after it
        response = stage.client.get(url, params)
        transaction.set_rollback(True)
    json = response["Content-Type"].startswith("application/json")
    return response.status_code, response.json() if json else response.content[:200]


def verdict(path: str, declared: dict[str, filters.Filter], value: Hostile, status: int, body: Any) -> str | None:
    """What is wrong with the answer to `value` sent in every filter of the list at once (None: nothing)."""
    wanted = {name: expect(kind_of(filter_), filter_, value) for name, filter_ in declared.items()}
    bad = {name for name, want in wanted.items() if want == "bad"}
    either = {name for name, want in wanted.items() if want == "either"}
    if status >= 500:
        return f"{status}"
    if status == 400:
        if not isinstance(body, dict) or not all(
                isinstance(messages, list) and messages and all(isinstance(m, str) and m for m in messages)
                for messages in body.values()):
            return f"400 not of DRF's shape: {str(body)[:200]}"
        named = set(body)
        if not bad <= named:
            return f"400 not naming {sorted(bad - named)}: {str(body)[:300]}"
        if not named <= bad | either:
            return f"400 naming good parameters {sorted(named - bad - either)}: {str(body)[:300]}"
        return None
    if bad:
        return f"{status}, wanted 400 naming {sorted(bad)}"
    if status != 200 and not ("{id}" in path and status == 404):  # a filtered detail route may find nothing
        return f"{status}, wanted 200: {str(body)[:200]}"
    return None


@pytest.mark.parametrize("path, declared, others", LISTS)
def test_no_hostile_value_is_a_500(stage, path, declared, others):
    """Each value in every filter of the list at once; a wrong answer is then pinned on each filter alone."""
    url = concrete(path, stage.case_id, stage.import_id)
    values = list(HOSTILE)
    for filter_ in declared.values():
        if kind_of(filter_) in ("choice", "choices"):
            values += choice_values(filter_)
    failures = []
    for value in values:
        if declared:
            status, body = get(stage, url, params_of(declared, value))
            if verdict(path, declared, value, status, body):
                for name, filter_ in declared.items():  # which filter: each alone
                    status, body = get(stage, url, params_of([name], value))
                    problem = verdict(path, {name: filter_}, value, status, body)
                    if problem:
                        failures.append(f"?{name}={value} ({kind_of(filter_)}): {problem}")
        if others:  # pagination, ordering, search and graph parameters: never a 500
            status, body = get(stage, url, params_of(others, value))
            if status >= 500 or status not in (200, 400, 403, 404):
                failures.append(f"?{'&'.join(others)}={value}: {status}")
    assert not failures, f"{path}:\n" + "\n".join(failures)


def test_an_out_of_range_offset_is_a_400_on_the_parameter(stage):
    """The findings, one by one."""
    for path, name in (("persons/", "created_after"), ("cases/", "created_after"), ("shipments/", "created_after"),
                       ("audit/", "after")):
        response = stage.client.get(API + path, {name: OUT_OF_RANGE_OFFSET})
        assert response.status_code == 400, (path, response.status_code)
        assert list(response.json()) == [name], response.json()
    for path, name in (("persons/", "nationality"), ("persons/", "phone"), ("organizations/", "jurisdiction")):
        response = stage.client.get(API + path, {name: "%"})
        assert response.status_code == 400, (path, name, response.status_code)
        assert list(response.json()) == [name], response.json()
        assert "'%'" in response.json()[name][0] or "%" in response.json()[name][0]


def test_good_values_still_filter(stage):
    """The hardening refuses what is bad and keeps what is good: offsets move the instant, not the match."""
    client = stage.client
    person = client.get(API + "persons/", {"nationality": "cn"}).json()
    assert person["count"] == 1
    assert client.get(API + "persons/", {"phone": "+86 138 0013 8000"}).json()["count"] == 1
    cases_url = API + "cases/"
    assert client.get(cases_url, {"created_after": "2000-01-01T00:00:00+14:00"}).json()["count"] == 1
    assert client.get(cases_url, {"created_after": "2999-01-01T00:00:00-12:00"}).json()["count"] == 0
    assert client.get(API + "commodities/", {"licence_required": "true"}).json()["count"] >= 1
    every = client.get(API + "commodities/").json()["count"]
    required = client.get(API + "commodities/", {"licence_required": "1"}).json()["count"]
    not_required = client.get(API + "commodities/", {"licence_required": "0"}).json()["count"]
    assert required + not_required == every


def test_no_filterset_class_is_made_per_request(stage):
    """Lists whose filterset is built from `filterset_fields` get a strict one without a class cached per request."""
    from core.api import filters as core_filters

    url = f"{API}cases/{stage.case_id}/parties/"
    assert stage.client.get(url, {"role": "suspect"}).status_code == 200
    cached = len(core_filters._hardened)
    for _ in range(3):
        assert stage.client.get(url, {"role": "suspect"}).status_code == 200
        assert stage.client.get(API + "audit/", {"after": "2026-01-01T00:00:00Z"}).status_code == 200
    assert len(core_filters._hardened) == cached
    assert stage.client.get(url, {"role": "nope"}).json() == {"role": [
        "Select a valid choice. nope is not one of the available choices."]}


def test_a_filtersets_strict_form_class_is_made_once():
    """Every request's filterset uses the one strict form class of its filterset class, not a new class each time;
    the forms made from it are still each request's own."""
    from django.http import QueryDict

    from core.api.filters import harden
    from entities.filtersets import PersonFilterSet

    strict = harden(PersonFilterSet)
    first = strict(QueryDict("name=Wei"), queryset=None)
    second = strict(QueryDict("nationality=CN"), queryset=None)
    assert first.get_form_class() is second.get_form_class()
    assert first.form is not second.form and first.form.fields is not second.form.fields
    assert first.form.data["name"] == "Wei" and "name" not in second.form.data
