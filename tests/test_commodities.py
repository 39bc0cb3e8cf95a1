"""Commodities: read-only reference data, looked up by code, readable by any signed-in user."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Commodity

from . import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/commodities/"
SEEDED = ["antimony", "gallium", "germanium", "graphite", "rare_earths", "tungsten"]


def codes(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [item["code"] for item in response.json()["results"]]


def test_list_has_the_seeded_commodities_in_code_order(api):
    assert codes(api.get(URL)) == SEEDED


def test_detail_by_code_has_every_contract_field(api):
    response = api.get(f"{URL}antimony/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"code", "name", "hs_codes", "control_regime", "controlled_since", "licence_required",
                         "reference_value_per_kg", "currency"}
    assert body["code"] == "antimony" and body["name"] == "Antimony"
    assert "811010" in body["hs_codes"] and body["controlled_since"] == "2024-09-15"
    assert body["licence_required"] is True and body["currency"] == "USD"
    assert body["reference_value_per_kg"] == "40.00"


@pytest.mark.parametrize("code", ["unobtainium", "ANTIMONY", "not a code"])
def test_unknown_code_is_404(api, code):
    assert api.get(f"{URL}{code}/").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "analyst", "auditor", "agency_admin"])
def test_every_role_of_every_agency_reads_them(client_for, world, role):
    user = factories.user(world.b, role, world.b1)
    assert codes(client_for(user).get(URL)) == SEEDED


def test_anonymous_is_401(client_for):
    assert client_for(None).get(URL).status_code == 401
    assert client_for(None).get(f"{URL}antimony/").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", URL), ("put", f"{URL}antimony/"), ("patch", f"{URL}antimony/"), ("delete", f"{URL}antimony/")],
)
def test_nobody_writes_them_through_the_api(client_for, world, method, path):
    superuser = factories.user(None, "viewer", is_superuser=True, is_staff=True)
    response = getattr(client_for(superuser), method)(path, {"code": "x", "name": "X"}, format="json")
    assert response.status_code == 405
    assert Commodity.objects.get(code="antimony").name == "Antimony"


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"q": "gall"}, ["gallium"]), ({"q": "Rare"}, ["rare_earths"]), ({"q": "8110.10"}, ["antimony"]),
     ({"q": "811292"}, ["gallium", "germanium"]), ({"licence_required": "true"}, SEEDED),
     ({"ordering": "-code"}, SEEDED[::-1]), ({"ordering": "controlled_since"}, ["gallium", "germanium", "graphite",
                                                                               "antimony", "tungsten",
                                                                               "rare_earths"])],
)
def test_filters(api, params, expected):
    assert codes(api.get(URL, params)) == expected


def test_list_queries_do_not_grow_with_page_size(api):
    api.get(URL, {"page_size": 2})
    counts = []
    for size in (2, 6):
        with CaptureQueriesContext(connection) as queries:
            assert len(codes(api.get(URL, {"page_size": size}))) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
