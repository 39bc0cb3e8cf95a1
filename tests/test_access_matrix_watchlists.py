"""Access matrix over `/watchlists/` (API.md § Access, § Watchlists), after tests/test_access_matrix.py.

A watchlist is an agency record without a case of its own to be shared through: every user of its agency reads
it, no other agency's user sees it (404, never 403; absent from lists), and nobody writes it through the API (it
is made by imports): a write is 405 for whoever is signed in, 401 for anonymous, and changes nothing. The list
filter of persons and organisations (`?list=`) is scoped as the lists are: another agency's listed records never
show.

The data is built once per module inside a transaction rolled back at the end; each test runs in a savepoint of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from watchlists.models import Watchlist

from . import factories
from .access_routes import Route
from .stages import built_once
from .test_access_matrix import CALLERS, Stage, base_stage, listed_ids

pytestmark = pytest.mark.django_db

RELATIONS = {"own": "a", "other_agency": "b"}
#            op        method    body                 success
OPERATIONS = {
    "retrieve": ("get", None, 200),
    "update": ("patch", {"source": "renamed"}, None),
    "archive": ("delete", None, None),
}

# The routes (tests/access_routes.py) this module exercises: by an operation of OPERATIONS (test_watchlist_matrix
# crosses it with every caller and RELATIONS) or by the test named. The writes have no route: 405.
ROUTES: dict[Route, str] = {("watchlist-list", "GET"): "test_watchlist_list", ("watchlist-detail", "GET"): "retrieve"}


@dataclass
class WatchlistStage(Stage):
    watchlists: dict[str, Watchlist] = field(default_factory=dict)
    listed: dict[str, str] = field(default_factory=dict)  # relation → a listed person's id


def build_stage() -> WatchlistStage:
    stage = base_stage(WatchlistStage)
    for relation, agency in RELATIONS.items():
        stage.watchlists[relation] = Watchlist.objects.create(
            agency=stage.agencies[agency], source="ofac-sdn", kind="ofac_sdn", entries=1, imported_at=timezone.now())
        person = factories.person(stage.agencies[agency], f"Listed {relation}", lists=["ofac-sdn"],
                                  topics=["sanction"])
        stage.listed[relation] = str(person.pk)
    return stage


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build_stage) as built:
        yield built


def expected(caller: str, relation: str, op: str) -> int:
    if caller == "anonymous":
        return 401
    success = OPERATIONS[op][2]
    if success is None:
        return 405  # read-only: made by imports
    return success if caller == "superuser" or relation == "own" else 404


def _fingerprint(watchlist: Watchlist) -> tuple:
    return Watchlist.objects.values_list("source", "version", "archived").get(pk=watchlist.pk)


@pytest.mark.parametrize(("caller", "relation", "op"), [
    pytest.param(caller, relation, op, id=f"{caller}-{relation}-{op}")
    for caller in CALLERS for relation in RELATIONS for op in OPERATIONS])
def test_watchlist_matrix(stage, caller, relation, op):
    watchlist = stage.watchlists[relation]
    method, body, _ = OPERATIONS[op]
    before = _fingerprint(watchlist)
    response = getattr(stage.client(caller), method)(f"/api/v1/watchlists/{watchlist.pk}/", body, format="json")
    want = expected(caller, relation, op)
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want == 200:
        assert response.json()["id"] == str(watchlist.pk)
        assert set(response.json()) >= {"id", "source", "kind", "entries", "delisted", "imported_at", "job"}
    else:
        assert "detail" in response.json()
    assert _fingerprint(watchlist) == before


@pytest.mark.parametrize("caller", CALLERS)
def test_watchlist_list(stage, caller):
    response = stage.client(caller).get("/api/v1/watchlists/", {"page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    ids = listed_ids(response)
    assert {relation: str(w.pk) in ids for relation, w in stage.watchlists.items()} == {
        relation: expected(caller, relation, "retrieve") == 200 for relation in RELATIONS}


@pytest.mark.parametrize("caller", CALLERS)
def test_create_is_refused(stage, caller):
    before = Watchlist.objects.count()
    response = stage.client(caller).post("/api/v1/watchlists/", {"source": "mine", "kind": "ftm"}, format="json")
    assert response.status_code == (401 if caller == "anonymous" else 405)
    assert Watchlist.objects.count() == before


@pytest.mark.parametrize("caller", CALLERS)
def test_list_filter_shows_only_visible_records(stage, caller):
    response = stage.client(caller).get("/api/v1/persons/", {"list": "ofac-sdn", "page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    ids = listed_ids(response)
    assert {relation: pk in ids for relation, pk in stage.listed.items()} == {
        relation: expected(caller, relation, "retrieve") == 200 for relation in RELATIONS}
