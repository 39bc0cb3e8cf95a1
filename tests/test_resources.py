"""What every resource of the API owes its clients, checked the same way for each, after NetBox's
`utilities/testing/api.py` (`APIViewTestCases`).

`ReadTests` and `WriteTests` hold the checks; each resource below declares only its data: its list URL (nested ones
under a case), a builder for one object (with its relations), a valid PATCH body. Per resource:

- without credentials → 401, on the list, the detail and every write;
- the list's query count is the same at `page_size=2` and `page_size=20` (after a warm-up request), over 21+ rows that
  carry their relations, each row its own (its own creator, unit, lead, members, case, parties, author, holder, …:
  rows sharing one related record would let the ORM's per-instance caching hide a missing `select_related`), so
  nothing is fetched row by row;
- the detail carries `ETag: "<version>"`;
- PATCH with a stale `If-Match` → 412, changing nothing; with the current one → 200, the version one up;
- DELETE archives: the row stays, `archived` true, gone from the list, back with `?include_archived=true` (supervisor);
- another agency's object → 404 on detail, PATCH and DELETE, unchanged.

Commodities are reference data: read-only (405 on writes), without version or archive.

Everything is built once per module inside a transaction rolled back at the end; each test runs in a savepoint.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Agency, Unit, User
from cases.commodities import seed_commodities
from cases.models import Case, Commodity

from . import factories
from .stages import built_once

pytestmark = pytest.mark.django_db

ROWS = 22  # of each resource in the caller's agency: a page of 20 and more
_seq = itertools.count(1)


@dataclass
class World:
    """Agency SSB ("a", the caller's) and ASB ("b"); a supervisor of each; a case of each for relations."""

    agencies: dict[str, Agency]
    units: dict[str, Unit]
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    # resource name → {"a": [ROWS objects], "b": [one object], "parent": {"a": case, "b": case}}
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def client(self, key: str | None = "sup-a") -> APIClient:
        client = APIClient()
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[key]}")
        return client


def own_unit(w: World, agency: str) -> Unit:
    """A unit of `agency` no other row uses."""
    return factories.unit(w.agencies[agency], f"unit-{next(_seq)}")


def own_user(w: World, agency: str) -> User:
    """A user of `agency`, in a unit of their own, that no other row uses."""
    return factories.user(w.agencies[agency], "investigator", own_unit(w, agency), username=f"staff-{next(_seq)}")


def own_case(w: World, agency: str) -> Case:
    """A case of `agency` whose unit, lead, members and creator are its own (no other row shares them)."""
    return factories.case(w.agencies[agency], own_unit(w, agency), "restricted", lead=own_user(w, agency),
                          members=(own_user(w, agency), own_user(w, agency)), created_by=own_user(w, agency))


def ref(entity: Any) -> dict[str, str]:
    return {"type": entity.type, "id": str(entity.pk)}


# --- the generic checks --------------------------------------------------------------------------

RESOURCES: list[type[ReadTests]] = []


class ReadTests:
    """Checks every resource passes. A subclass declares `name`, `url` (`{parent}` for nested ones) and `build`."""

    name: ClassVar[str]
    basename: ClassVar[str]  # the router's
    url: ClassVar[str]
    nested: ClassVar[bool] = False  # one case holds the rows (`/cases/{parent}/…/`)
    lookup: ClassVar[str] = "pk"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            RESOURCES.append(cls)

    @classmethod
    def build(cls, w: World, agency: str, parent: Case | None) -> Any:
        """One object of `agency` (inside `parent` when nested), with its relations."""
        raise NotImplementedError

    # --- URLs ---

    def list_url(self, w: World, agency: str = "a") -> str:
        parent = w.objects[self.name]["parent"][agency]
        return self.url.format(parent=parent.pk if parent else "")

    def detail_url(self, w: World, obj: Any, agency: str = "a") -> str:
        return f"{self.list_url(w, agency)}{getattr(obj, self.lookup)}/"

    def rows(self, w: World, agency: str = "a") -> list[Any]:
        return w.objects[self.name][agency]

    # --- checks ---

    def test_anonymous_is_401(self, stage):
        client = stage.client(None)
        obj = self.rows(stage)[0]
        for method, url in (("get", self.list_url(stage)), ("get", self.detail_url(stage, obj)),
                            *self.anonymous_writes(stage, obj)):
            response = getattr(client, method)(url)
            assert response.status_code == 401, (method, url, response.status_code)
            assert "detail" in response.json()

    def anonymous_writes(self, w: World, obj: Any) -> list[tuple[str, str]]:
        return []

    def test_list_query_count_is_constant_in_page_size(self, stage):
        assert_constant_queries(stage.client(), self.list_url(stage))

    def test_detail(self, stage):
        obj = self.rows(stage)[0]
        response = stage.client().get(self.detail_url(stage, obj))
        assert response.status_code == 200, response.json()
        assert str(response.json()[self.lookup if self.lookup != "pk" else "id"]) == str(getattr(obj, self.lookup))


class WriteTests(ReadTests):
    """Checks every versioned, archivable resource passes. A subclass adds `patch`, a valid PATCH body."""

    patch: ClassVar[dict[str, Any]]
    archives: ClassVar[bool] = True  # False: not deleted through the API either (DELETE is a 405)

    def anonymous_writes(self, w: World, obj: Any) -> list[tuple[str, str]]:
        detail = self.detail_url(w, obj)
        return [("post", self.list_url(w)), ("patch", detail), ("put", detail), ("delete", detail)]

    def model(self, obj: Any) -> Any:
        return type(obj)._default_manager

    def state(self, obj: Any) -> tuple:
        """The row as stored: version, archived, updated_at and every field the PATCH body names."""
        names = [name for name in self.patch if hasattr(obj, f"{name}_id") is False and hasattr(obj, name)]
        return self.model(obj).values_list("version", "archived", "updated_at", *names).get(pk=obj.pk)

    def version(self, obj: Any) -> int:
        return self.model(obj).values_list("version", flat=True).get(pk=obj.pk)

    def test_detail_carries_the_version_as_etag(self, stage):
        obj = self.rows(stage)[0]
        self.model(obj).filter(pk=obj.pk).update(version=F("version") + 2)  # not 1 by chance
        response = stage.client().get(self.detail_url(stage, obj))
        assert response.status_code == 200
        version = self.version(obj)
        assert response["ETag"] == f'"{version}"'
        assert response.json()["version"] == version

    def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(self, stage):
        obj = self.rows(stage)[0]
        stale = self.version(obj)
        self.model(obj).filter(pk=obj.pk).update(version=F("version") + 1)  # someone else's change
        before = self.state(obj)
        response = stage.client().patch(self.detail_url(stage, obj), self.patch, format="json",
                                        HTTP_IF_MATCH=f'"{stale}"')
        assert response.status_code == 412, response.json()
        assert "detail" in response.json()
        assert self.state(obj) == before

    def test_patch_with_the_current_if_match_is_200_and_bumps_the_version(self, stage):
        obj = self.rows(stage)[0]
        current = self.version(obj)
        response = stage.client().patch(self.detail_url(stage, obj), self.patch, format="json",
                                        HTTP_IF_MATCH=f'"{current}"')
        assert response.status_code == 200, response.json()
        assert response.json()["version"] == current + 1
        assert response["ETag"] == f'"{current + 1}"'
        assert self.version(obj) == current + 1
        for name, value in self.patch.items():
            assert response.json()[name] == value, name

    def test_delete_archives(self, stage):
        obj = self.rows(stage)[0]
        client, url = stage.client(), self.list_url(stage)
        response = client.delete(self.detail_url(stage, obj))
        if not self.archives:
            assert response.status_code == 405, response.content[:300]
            assert self.model(obj).filter(pk=obj.pk, archived=False).exists()
            return
        assert response.status_code == 204, response.content[:300]
        assert self.model(obj).filter(pk=obj.pk, archived=True).exists(), "the row is kept, archived"
        assert str(obj.pk) not in self.listed(client, url, {})
        assert str(obj.pk) in self.listed(client, url, {"include_archived": "true"})

    @staticmethod
    def listed(client: APIClient, url: str, params: dict[str, str]) -> set[str]:
        response = client.get(url, {"page_size": "500", **params})
        assert response.status_code == 200, response.json()
        assert response.json()["next"] is None
        return {row["id"] for row in response.json()["results"]}

    def test_another_agencys_object_is_404(self, stage):
        theirs = self.rows(stage, "b")[0]
        before = self.state(theirs)
        client = stage.client()
        urls = [self.detail_url(stage, theirs, "b")]
        if self.nested:  # and under a case of the caller's own
            urls.append(self.detail_url(stage, theirs, "a"))
        for url in urls:
            for method, body in (("get", None), ("patch", self.patch), ("delete", None)):
                response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
                assert response.status_code == (404 if self.archives or method != "delete" else 405), (
                    method, url, response.status_code)
                assert "detail" in response.json()
        assert self.state(theirs) == before


def assert_constant_queries(client: APIClient, url: str) -> None:
    assert client.get(url, {"page_size": 2}).status_code == 200  # warm-up: caches, content types, …
    counts = {}
    for size in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, {"page_size": size})
        assert response.status_code == 200, response.json()
        assert len(response.json()["results"]) == size, "too few rows to fill the page"
        counts[size] = len(queries)
    assert counts[2] == counts[20], counts


# --- the resources: data only ----------------------------------------------------------------------


class TestCases(WriteTests):
    name = "cases"
    basename = "case"
    url = "/api/v1/cases/"
    patch = {"title": "Antimony trail, renamed"}

    @classmethod
    def build(cls, w, agency, parent):
        case = factories.case(w.agencies[agency], own_unit(w, agency), "restricted", lead=own_user(w, agency),
                              members=(own_user(w, agency), own_user(w, agency)), created_by=own_user(w, agency),
                              tags=["antimony"])
        case.commodities.set(Commodity.objects.filter(code__in=["antimony", "gallium"]))
        factories.party(case, factories.person(w.agencies[agency]))
        return case


class TestCaseParties(WriteTests):
    name = "parties"
    basename = "case-party"
    url = "/api/v1/cases/{parent}/parties/"
    nested = True
    patch = {"custody_status": "detained"}

    @classmethod
    def build(cls, w, agency, parent):
        entity = (factories.person if next(_seq) % 2 else factories.organization)(w.agencies[agency])
        return factories.party(parent, entity, role="courier")


class TestNotes(WriteTests):
    name = "notes"
    basename = "case-note"
    url = "/api/v1/cases/{parent}/notes/"
    nested = True
    patch = {"body": "Seen at the port, twice."}

    @classmethod
    def build(cls, w, agency, parent):
        return factories.note(parent, own_user(w, agency))


class TestShares(WriteTests):
    name = "shares"
    basename = "case-share"
    url = "/api/v1/cases/{parent}/shares/"
    nested = True
    patch = {"access": "write"}

    @classmethod
    def build(cls, w, agency, parent):
        return factories.share(parent, w.agencies["c"], "read", unit_obj=own_unit(w, "c"), by=own_user(w, agency))


class TestPersons(WriteTests):
    name = "persons"
    basename = "person"
    url = "/api/v1/persons/"
    patch = {"notes": "Travels on two passports."}

    @classmethod
    def build(cls, w, agency, parent):
        person = factories.person(w.agencies[agency], nationalities=["CN"], phones=["+8613800138000"],
                                  identifiers=[{"scheme": "passport", "number": f"E{next(_seq):08d}", "country": "CN"}])
        factories.party(own_case(w, agency), person)
        # Confirmed as the same as another person: its `same_as` is filled (the partner is listed too).
        factories.confirmed(person, factories.person(w.agencies[agency]), by=own_user(w, agency))
        return person


class TestOrganizations(WriteTests):
    name = "organizations"
    basename = "organization"
    url = "/api/v1/organizations/"
    patch = {"notes": "Shares an address with three others."}

    @classmethod
    def build(cls, w, agency, parent):
        org = factories.organization(w.agencies[agency], jurisdiction="HK", kind="trader")
        factories.party(own_case(w, agency), org, role="shell_company")
        factories.confirmed(org, factories.organization(w.agencies[agency]), by=own_user(w, agency))
        return org


class TestLinks(WriteTests):
    name = "links"
    basename = "link"
    url = "/api/v1/links/"
    patch = {"description": "Signs for the company at customs."}

    @classmethod
    def build(cls, w, agency, parent):
        owner = w.agencies[agency]
        return factories.link(owner, factories.person(owner), factories.organization(owner), kind="employment",
                              case=own_case(w, agency))


class TestShipments(WriteTests):
    name = "shipments"
    basename = "shipment"
    url = "/api/v1/shipments/"
    patch = {"seizure_location": "Haiphong port"}

    @classmethod
    def build(cls, w, agency, parent):
        owner = w.agencies[agency]
        org = factories.organization(owner)
        return factories.shipment(
            owner, commodity_id="antimony", origin_country="CN", destination_country="US",
            consignor=org, consignee=factories.organization(owner), notify_party=factories.person(owner),
            ordering_party=org, licence=factories.licence(owner, holder=org), cases=(own_case(w, agency),),
            legs=({"from_country": "CN", "to_country": "VN", "mode": "road", "departed_on": "2025-03-01"},
                  {"from_country": "VN", "to_country": "US", "mode": "sea"}),
        )


class TestLicences(WriteTests):
    name = "licences"
    basename = "licence"
    url = "/api/v1/licences/"
    patch = {"destination_country": "VN"}

    @classmethod
    def build(cls, w, agency, parent):
        owner = w.agencies[agency]
        licence = factories.licence(owner, holder=factories.organization(owner),
                                    end_user=factories.organization(owner), destination_country="US",
                                    valid_from="2025-01-01", valid_to="2025-12-31")
        factories.shipment(owner, licence=licence, cases=(own_case(w, agency),))
        return licence


class TestProsecutions(WriteTests):
    name = "prosecutions"
    basename = "prosecution"
    url = "/api/v1/prosecutions/"
    patch = {"court": "Intermediate People's Court"}

    @classmethod
    def build(cls, w, agency, parent):
        defendant = factories.person(w.agencies[agency])
        case = own_case(w, agency)
        factories.party(case, defendant)
        return factories.prosecution(case, defendant, charges=(("Criminal Law art. 151", "Smuggling"),
                                                                          ("Customs Law art. 82", "")))


class TestEvidence(WriteTests):
    name = "evidence"
    basename = "case-evidence"
    url = "/api/v1/cases/{parent}/evidence/"
    nested = True
    patch = {"title": "Bill of lading, certified copy"}

    @classmethod
    def build(cls, w, agency, parent):
        evidence = factories.evidence(parent, own_user(w, agency), content=f"exhibit {next(_seq)}".encode())
        from cases.services import evidence_record_download

        evidence_record_download(evidence=evidence, actor=own_user(w, agency))  # a custody log of two
        return evidence


class TestAlerts(WriteTests):
    name = "alerts"
    basename = "alert"
    url = "/api/v1/alerts/"
    patch = {"status": "escalated"}
    archives = False

    @classmethod
    def build(cls, w, agency, parent):
        owner = w.agencies[agency]
        n = next(_seq)
        subject = factories.shipment(owner) if n % 2 else factories.organization(owner)
        return factories.alert(subject, case=own_case(w, agency), status="dismissed",
                               status_changed_by=own_user(w, agency),
                               related=({"type": "person", "id": str(factories.person(owner).pk), "label": "Kin"},))


class TestCommodities(ReadTests):
    """Reference data, the same for every agency: read by anyone signed in, written by nobody here."""

    name = "commodities"
    basename = "commodity"
    url = "/api/v1/commodities/"
    lookup = "code"

    @classmethod
    def build(cls, w, agency, parent):
        if agency == "b":
            return Commodity.objects.get(code="antimony")  # there is no other agency's commodity
        n = next(_seq)
        return Commodity.objects.create(code=f"test_metal_{n}", name=f"Test metal {n}", hs_codes=["811090"],
                                        reference_value_per_kg="12.50")

    def test_writes_are_405_and_change_nothing(self, stage):
        obj = self.rows(stage)[0]
        client = stage.client()
        before = Commodity.objects.filter(pk=obj.pk).values().get()
        for method, url, body in (("post", self.list_url(stage), {"code": "x", "name": "X"}),
                                  ("patch", self.detail_url(stage, obj), {"name": "Renamed"}),
                                  ("put", self.detail_url(stage, obj), {"code": obj.code, "name": "Renamed"}),
                                  ("delete", self.detail_url(stage, obj), None)):
            response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
            assert response.status_code == 405, (method, response.status_code)
        assert Commodity.objects.filter(pk=obj.pk).values().get() == before
        assert not Commodity.objects.filter(code="x").exists()


# --- the data, once per module ---------------------------------------------------------------------


def build_world() -> World:
    if not Commodity.objects.exists():
        seed_commodities(Commodity)
    agencies = {"a": factories.agency("SSB", "State Security Bureau"),
                "b": factories.agency("ASB", "Anti-Smuggling Bureau"),
                "c": factories.agency("CGX", "Coast Guard")}
    units = {"a1": factories.unit(agencies["a"], "econ"), "b1": factories.unit(agencies["b"], "ports"),
             "c1": factories.unit(agencies["c"], "patrol")}
    w = World(agencies, units)
    for key, agency in (("sup-a", "a"), ("sup-b", "b")):
        user = factories.user(agencies[agency], "supervisor", units[f"{agency}1"], username=key)
        w.users[key] = user
        w.tokens[key] = factories.token(user)
    for agency in ("a", "b"):
        w.cases[agency] = factories.case(agencies[agency], units[f"{agency}1"], "restricted",
                                         lead=w.users[f"sup-{agency}"])
    for resource in RESOURCES:
        parents = {agency: factories.case(agencies[agency], units[f"{agency}1"]) if resource.nested else None
                   for agency in ("a", "b")}
        w.objects[resource.name] = {
            "parent": parents,
            "a": [resource.build(w, "a", parents["a"]) for _ in range(ROWS)],
            "b": [resource.build(w, "b", parents["b"])],
        }
    from imports.models import ImportJob

    for n in range(ROWS):
        ImportJob.objects.create(agency=agencies["a"], kind="persons", file=f"imports/test-{n}.csv",
                                 created_by=own_user(w, "a"))
    for n in range(ROWS):  # cross-referencing: matches of records of their own, each decided by its own user
        factories.match(factories.person(agencies["a"]), factories.person(agencies["a"]), score=0.5 + n / 100,
                        status="rejected", decided_by=own_user(w, "a"))
        factories.run(agencies["a"], own_user(w, "a"), case=own_case(w, "a"))
    for n in range(ROWS):  # deconfliction: each of SSB's hits on a record of its own, matched in an agency of its own
        factories.hits(factories.person(agencies["a"]), factories.person(factories.agency(f"X{n:02d}")))
    return w


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker, tmp_path_factory):
    with built_once(django_db_blocker, build_world, str(tmp_path_factory.mktemp("media"))) as built:
        yield built


# Lists that are not a resource above, each with the URL of one holding 21+ rows of distinct relations: the
# audit trail (the evidence above writes its events), the import jobs and cross-referencing's matches, runs and
# hits (built above, each by its own user, or on records of its own) and the timeline of the case holding the
# notes (each by its own author).
def _watchlists(w) -> str:
    """Lists made by imports, here made directly: enough of them to fill a page."""
    from watchlists.models import Watchlist

    agency = w.objects["notes"]["parent"]["a"].agency
    Watchlist.objects.bulk_create([Watchlist(agency=agency, source=f"list-{i}", kind="ftm") for i in range(21)])
    return "/api/v1/watchlists/"


OTHER_LISTS = {
    "/api/v1/audit/": lambda w: "/api/v1/audit/",
    "/api/v1/imports/": lambda w: "/api/v1/imports/",
    "/api/v1/xref/matches/": lambda w: "/api/v1/xref/matches/",
    "/api/v1/xref/runs/": lambda w: "/api/v1/xref/runs/",
    "/api/v1/watchlists/": _watchlists,
    "/api/v1/xref/hits/": lambda w: "/api/v1/xref/hits/",
    "/api/v1/cases/{}/timeline/": lambda w: f"/api/v1/cases/{w.objects['notes']['parent']['a'].pk}/timeline/",
}


@pytest.mark.parametrize("template", sorted(OTHER_LISTS))
def test_other_list_query_count_is_constant_in_page_size(stage, template):
    assert_constant_queries(stage.client(), OTHER_LISTS[template](stage))


def test_every_list_of_the_api_has_its_query_count_checked():
    """Every GET list of the API's schema is a resource above or one of OTHER_LISTS."""
    import re

    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    lists = {re.sub(r"\{[^}]*\}", "{}", path) for path, operations in paths.items()
             if operations.get("get", {}).get("operationId", "").endswith("_list")}
    checked = {re.sub(r"\{[^}]*\}", "{}", resource.url) for resource in RESOURCES} | set(OTHER_LISTS)
    assert lists - checked == set(), "lists without a constant-query check"


def test_every_resource_of_the_api_is_here():
    """A viewset registered in a resource router without a class above fails this test."""
    from alerts.api.urls import router as alerts_router
    from cases.api.urls import router as cases_router
    from entities.api.urls import router as entities_router
    from shipments.api.urls import router as shipments_router

    registered = {basename for router in (cases_router, entities_router, shipments_router, alerts_router)
                  for _, _, basename in router.registry}
    assert registered == {resource.basename for resource in RESOURCES}
