"""The access matrices cover every route of the API, as the URL resolver has them (tests/access_routes.py).

Each matrix module declares ROUTES: the (route name, method) pairs it exercises, each by an operation of its tables
(crossed there with every caller — the six roles, a superuser, anonymous — and with the object's relations to the
caller, among them an object of the caller's agency and one of another agency) or by the test it names. Here the
union of those tables is held against every route under api/v1/ that config.urls resolves: a route no matrix names,
and that EXCLUDED does not list with its reason, fails, named with its method and pattern; so does a matrix naming a
route that no longer exists.

Commodities are reference data every agency reads alike: no agency owns one, so there is no other agency's object
to try; every signed-in caller reads them (test_reference_data).
"""

from __future__ import annotations

from types import ModuleType

import pytest
from django.urls import clear_url_caches

from . import (
    factories,
    test_access_matrix,
    test_access_matrix_alerts,
    test_access_matrix_imports,
    test_access_matrix_index,
    test_access_matrix_watchlists,
    test_access_matrix_xref,
)
from .access_routes import EXCLUDED, Route, api_routes
from .test_access_matrix import CALLERS, ROLES

ROUTES: dict[Route, str] = {("commodity-list", "GET"): "test_reference_data",
                            ("commodity-detail", "GET"): "test_reference_data"}

# Each matrix module, and the tables whose operations its ROUTES name.
MATRICES: dict[ModuleType, set[str]] = {
    test_access_matrix: set(test_access_matrix.OPS),
    test_access_matrix_index: {*test_access_matrix_index.RECORD_RULES, *test_access_matrix_index.CHILD_RULES},
    test_access_matrix_xref: {*test_access_matrix_xref.MATCH_RULES, "retrieve"},
    test_access_matrix_alerts: set(test_access_matrix_alerts.ALERT_OPS),
    test_access_matrix_watchlists: set(test_access_matrix_watchlists.OPERATIONS),
    test_access_matrix_imports: set(test_access_matrix_imports.OPERATIONS),
}


def covered() -> dict[Route, str]:
    """Every route a matrix names → the module that does."""
    routes = {route: __name__ for route in ROUTES}
    for module in MATRICES:
        for route in module.ROUTES:
            assert route not in routes, f"{route} is in two matrices: {routes[route]} and {module.__name__}"
            routes[route] = module.__name__
    return routes


def uncovered() -> list[str]:
    """The routes of the resolver (settings.ROOT_URLCONF) that neither a matrix nor EXCLUDED names."""
    known = covered().keys() | EXCLUDED.keys()
    return [f"{name} {method} ({pattern})" for (name, method), pattern in sorted(api_routes().items())
            if (name, method) not in known]


def test_every_api_route_is_in_an_access_matrix():
    missing = uncovered()
    assert not missing, ("routes no access matrix exercises (add them to a ROUTES table of "
                         f"tests/test_access_matrix*.py, or to EXCLUDED with a reason): {missing}")


def test_the_matrices_name_only_routes_that_exist():
    resolved = api_routes()
    stale = sorted((covered().keys() | EXCLUDED.keys()) - resolved.keys())
    assert not stale, f"routes the resolver does not have: {stale}"


@pytest.mark.parametrize("module", MATRICES, ids=lambda module: module.__name__.rpartition(".")[2])
def test_each_route_names_what_exercises_it(module):
    """An operation of the module's tables (so its matrix crosses it with every caller and relation) or a test."""
    unknown = {route: by for route, by in module.ROUTES.items()
               if by not in MATRICES[module] and not (by.startswith("test_") and callable(getattr(module, by, None)))}
    assert not unknown


def test_a_new_route_missing_from_the_matrices_fails_the_check(settings):
    """A URL conf of the project's routes and one more: the check names the new route and its methods, no other."""
    assert not uncovered()
    settings.ROOT_URLCONF = "tests.urls_extra_route"
    clear_url_caches()
    try:
        assert uncovered() == ["extra-route GET (api/v1/extra/)", "extra-route POST (api/v1/extra/)"]
        with pytest.raises(AssertionError, match=r"extra-route GET \(api/v1/extra/\)"):
            test_every_api_route_is_in_an_access_matrix()
    finally:
        clear_url_caches()


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
def test_reference_data(client_for, caller):
    agency = factories.agency("SSB", "State Security Bureau")
    user = None if caller == "anonymous" else factories.user(
        agency, caller if caller in ROLES else "viewer", clearance="unclassified", is_superuser=caller == "superuser")
    client = client_for(user)
    listing = client.get("/api/v1/commodities/", {"page_size": 500})
    detail = client.get("/api/v1/commodities/antimony/")
    if caller == "anonymous":
        assert (listing.status_code, detail.status_code) == (401, 401)
        return
    assert (listing.status_code, detail.status_code) == (200, 200), (listing.content[:300], detail.content[:300])
    assert "antimony" in {item["code"] for item in listing.json()["results"]}
    assert detail.json()["code"] == "antimony"
