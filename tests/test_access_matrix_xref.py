"""Access matrix over cross-referencing's endpoints (API.md § Access, § Cross-referencing), after
tests/test_access_matrix.py and tests/test_access_matrix_index.py.

Each cell is one test; its expected outcome is read off the tables below, meant to be checked line by line against
API.md § Access:

- caller x a match's relation to the caller x operation (retrieve, decide), and list membership per caller;
- caller x starting a run; caller x a run's agency (retrieve, list membership);
- caller x a deconfliction hit's relation to the caller x operation (retrieve, list membership, and the writes
  the read-only resource refuses).

The general rules are tests/test_access_matrix.py's: anonymous → 401; an object the caller does not see → 404
(never 403) and absent from lists; an object the caller sees but may not change this way → 403, changing nothing;
otherwise the operation's success code. Where API.md is open, a comment marked "reading" says which reading a table
takes.

The data is built once per module inside a transaction rolled back at the end; each test runs in a savepoint of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from audit.models import AuditEvent
from xref import services
from xref.models import DeconflictionHit, Match, XrefRun

from . import factories
from .access_routes import Route
from .stages import built_once
from .test_access_matrix import (
    CALLERS,
    INVESTIGATORS,
    RELATIONS,
    ROLES,
    N,
    Stage,
    Y,
    base_stage,
    check_listed,
    listed_ids,
    matrix_status,
)

pytestmark = pytest.mark.django_db

ANALYSTS = frozenset({"analyst", *INVESTIGATORS})
NOBODY: frozenset[str] = frozenset()

# --- matches: how each stands to the caller --------------------------------------------------------------------
# Every caller sits in agency SSB, unit a1. A match joins two records; each is SSB's own or ASB's, ASB's linked (as a
# party) to one case of tests/test_access_matrix.py's RELATIONS, or to none.
#   relation:            (left record, right record): "own", or the RELATIONS key of the ASB case it is a party of
MATCH_RELATIONS: dict[str, tuple[str, str]] = {
    "own":               ("own", "own"),
    "other_agency":      ("other_agency", "other_agency"),
    "shared_read":       ("shared_read", "shared_read"),
    "shared_write":      ("shared_write", "shared_write"),
    "shared_other_unit": ("shared_other_unit", "shared_other_unit"),  # shared with SSB's unit a2 only
    # reading: "Match visible when both records are" is the policy's, and DESIGN.md § Cross-referencing has a match
    # across agencies reach each side only as a deconfliction hit: one with another agency's record never shows,
    # even where that record is seen through a shared case.
    "across_shared":     ("own", "shared_read"),
    "across_hidden":     ("own", "other_agency"),
}

# API.md § Access, Agency records (matches among them): "visible to every user of the owning agency; to another
# agency only where linked to a case shared with it, read-only".
#                      viewer analyst investigator supervisor auditor agency_admin
MATCH_SEES: dict[str, tuple[bool, ...]] = {
    "own":               (Y,    Y,      Y,           Y,         Y,      Y),
    "other_agency":      (N,    N,      N,           N,         N,      N),
    "shared_read":       (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_write":      (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_other_unit": (N,    N,      N,           N,         N,      N),
    "across_shared":     (N,    N,      N,           N,         N,      N),
    "across_hidden":     (N,    N,      N,           N,         N,      N),
}
# reading: a read-write share opens the case's content (API.md lists it) to writing, not the other agency's master
# index or its matches.
MATCH_ACCESS = {"own": "own", "shared_read": "shared", "shared_write": "shared"}

# API.md § Access, Writes: "analyst: links, notes, match decisions, …"; viewer and auditor write nothing.
#   op          own agency's match  another agency's, seen through a shared case  success
MATCH_RULES: dict[str, tuple[frozenset[str], frozenset[str], int]] = {
    "retrieve": (frozenset(ROLES),  frozenset(ROLES),                             200),
    "decide":   (ANALYSTS,          NOBODY,                                       200),
}
MATCH_COLUMN = {"own": 0, "shared": 1}

# Whether the caller sees a record: SSB's own, or ASB's through the case it is a party of (tests/test_access_matrix.py's
# SEES for that case, which is the same for every role here).
RECORD_SEEN = {"own": Y, "other_agency": N, "shared_read": Y, "shared_write": Y, "shared_other_unit": N}

RUN_STARTERS = ANALYSTS  # policy "xref.run": analysts and up
# reading: a run is an agency record without a case of its own to be shared through: its agency's users see it.
RUN_RELATIONS = {"own": Y, "other_agency": N}


# --- deconfliction hits: how each stands to the caller ------------------------------------------------------------
# A hit is one side of a match across agencies (MATCH_RELATIONS' across_hidden and across_shared, and one more
# pair withdrawn by a rejection): SSB's side names SSB's record, ASB's side ASB's.
#   relation:                (match, side)
HIT_RELATIONS: dict[str, tuple[str, str]] = {
    "own":                   ("across_hidden", "own"),
    "own_shared":            ("across_shared", "own"),  # the other side's record is seen through a shared case
    "other_agency":          ("across_hidden", "other"),
    # reading: "nothing of the other agency's record": its side's hit stays its own even where a case shared with
    # the caller shows that record.
    "other_agency_shared":   ("across_shared", "other"),
    # DESIGN.md: a hit "withdrawn when a record is archived or a decision rejects the pair": shown to nobody.
    "own_withdrawn":         ("across_withdrawn", "own"),
    "other_withdrawn":       ("across_withdrawn", "other"),
}
# API.md § Cross-referencing: `GET /xref/hits/`, each agency its own (an agency record, never through a share).
#                        viewer analyst investigator supervisor auditor agency_admin superuser
HIT_SEES: dict[str, tuple[bool, ...]] = {
    "own":                   (Y,    Y,      Y,           Y,         Y,      Y,           Y),
    "own_shared":            (Y,    Y,      Y,           Y,         Y,      Y,           Y),
    "other_agency":          (N,    N,      N,           N,         N,      N,           Y),
    "other_agency_shared":   (N,    N,      N,           N,         N,      N,           Y),
    "own_withdrawn":         (N,    N,      N,           N,         N,      N,           N),
    "other_withdrawn":       (N,    N,      N,           N,         N,      N,           N),
}
# Read-only: no user writes a hit (cross-referencing makes them). Each write: method, whether on the detail.
HIT_WRITES = {"create": ("post", False), "update": ("patch", True), "archive": ("delete", True)}


# The routes (tests/access_routes.py) this module exercises: by an operation of MATCH_RULES (test_match_matrix crosses
# it with every caller and MATCH_RELATIONS), "retrieve" of the hits (test_hit_matrix: every caller, HIT_RELATIONS), or
# by the test named.
ROUTES: dict[Route, str] = {
    ("xref-match-list", "GET"): "test_list", ("xref-match-detail", "GET"): "retrieve",
    ("xref-match-decision", "POST"): "decide",
    ("xref-hit-list", "GET"): "test_list", ("xref-hit-detail", "GET"): "retrieve",
    ("xref-run-list", "GET"): "test_run_matrix", ("xref-run-list", "POST"): "test_start_a_run",
    ("xref-run-detail", "GET"): "test_run_matrix",
}


def hit_expected(caller: str, relation: str, op: str) -> int:
    if caller == "anonymous":
        return 401
    if op in HIT_WRITES:
        return 405  # refused before any lookup: the answer is the same for a hit the caller does not see
    return 200 if HIT_SEES[relation][(*ROLES, "superuser").index(caller)] else 404


def match_expected(caller: str, relation: str, op: str) -> int:
    return matrix_status(caller, MATCH_SEES[relation], MATCH_RULES[op][2],
                         lambda: MATCH_RULES[op][MATCH_COLUMN[MATCH_ACCESS[relation]]])


def run_expected(caller: str, relation: str) -> int:
    if caller == "anonymous":
        return 401
    return 200 if caller == "superuser" or RUN_RELATIONS[relation] else 404


# --- the stage ---------------------------------------------------------------------------------------------------


@dataclass
class XrefStage(Stage):
    matches: dict[str, Match] = field(default_factory=dict)
    ends: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # a match's records, as MATCH_RELATIONS names them
    runs: dict[str, XrefRun] = field(default_factory=dict)
    hits: dict[str, DeconflictionHit] = field(default_factory=dict)


def build_stage() -> XrefStage:
    stage = base_stage(XrefStage)
    cases = {relation: stage.add_case(RELATIONS[relation][0], shared=RELATIONS[relation][2])
             for relation in ("other_agency", "shared_read", "shared_write", "shared_other_unit")}

    def record(where: str, name: str) -> Any:
        if where == "own":
            return factories.person(stage.agencies["a"], name)
        person = factories.person(stage.agencies["b"], name)
        factories.party(cases[where], person)
        return person

    for relation, (left, right) in MATCH_RELATIONS.items():
        ends = (record(left, f"Matrix {relation} Zhang Wei"), record(right, f"Matrix {relation} Wei Zhang"))
        stage.ends[relation] = ends
        stage.matches[relation] = factories.match(*ends, score=0.9)
    withdrawn = factories.hits(record("own", "Matrix withdrawn Li Na"),
                               record("other_agency", "Matrix withdrawn Na Li"))
    services.hits_sync([match.pk for match in stage.matches.values()])
    Match.objects.filter(pk=withdrawn.pk).update(status="rejected")
    services.hits_sync([withdrawn.pk])
    across = {**stage.matches, "across_withdrawn": withdrawn}
    for relation, (match_relation, side) in HIT_RELATIONS.items():
        agency = stage.agencies["a" if side == "own" else "b"]
        stage.hits[relation] = DeconflictionHit.objects.get(match=across[match_relation], agency=agency)
    stage.runs["own"] = factories.run(stage.agencies["a"], stage.users["sup-ssb"])
    stage.runs["other_agency"] = factories.run(stage.agencies["b"], stage.users["sup-asb"])
    return stage


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build_stage) as built:
        yield built


def fingerprint(match: Match) -> tuple:
    return (Match.objects.values_list("version", "status", "decided_by", "note").get(pk=match.pk),
            AuditEvent.objects.filter(action="decision", object_id=str(match.pk)).count())


# --- matches -----------------------------------------------------------------------------------------------------

MATRIX = [pytest.param(caller, relation, op, id=f"{caller}-{relation}-{op}")
          for caller in CALLERS for relation in MATCH_RELATIONS for op in MATCH_RULES]


@pytest.mark.parametrize(("caller", "relation", "op"), MATRIX)
def test_match_matrix(stage, caller, relation, op):
    match = stage.matches[relation]
    want = match_expected(caller, relation, op)
    before = fingerprint(match)
    client = stage.client(caller)
    url = f"/api/v1/xref/matches/{match.pk}/"
    if op == "retrieve":
        response = client.get(url)
    else:
        response = client.post(f"{url}decision/", {"decision": "confirmed", "note": "matrix"}, format="json")

    assert response.status_code == want, (response.status_code, response.content[:300])
    if want >= 400:
        assert "detail" in response.json()
    if want == 200:
        body = response.json()
        assert body["id"] == str(match.pk)
        assert {body["left"]["id"], body["right"]["id"]} == {str(match.left_id), str(match.right_id)}
    if op == "decide" and want == 200:
        assert Match.objects.get(pk=match.pk).status == "confirmed"
        assert fingerprint(match)[1] == before[1] + 1, "a decision is audited"
    elif op == "decide":
        assert fingerprint(match) == before, "a refused decision changed something"


# The lists of the matrix's objects: url, the stage's objects by relation, the expected answer to retrieving one.
LISTS: dict[str, tuple[str, str, Callable[[str, str, str], int]]] = {
    "matches": ("/api/v1/xref/matches/", "matches", match_expected),
    "hits": ("/api/v1/xref/hits/", "hits", hit_expected),
}


@pytest.mark.parametrize("resource", LISTS)
@pytest.mark.parametrize("caller", CALLERS)
def test_list(stage, caller, resource):
    """The whole list, unfiltered: each of the matrix's matches (or hits) is in it exactly when the caller may
    retrieve it."""
    url, objects, expected = LISTS[resource]
    check_listed(stage, caller, url, getattr(stage, objects),
                 lambda relation: expected(caller, relation, "retrieve") == 200)


@pytest.mark.parametrize("caller", CALLERS)
def test_match_list_by_entity(stage, caller):
    """Filtering by a record of a match the caller may not see shows nothing (scoping comes before any filter)."""
    client = stage.client(caller)
    for relation, match in stage.matches.items():
        for entity in (match.left_id, match.right_id):
            response = client.get("/api/v1/xref/matches/", {"entity": str(entity)})
            if caller == "anonymous":
                assert response.status_code == 401
                continue
            assert (str(match.pk) in listed_ids(response)) is (match_expected(caller, relation, "retrieve") == 200)


@pytest.mark.parametrize("relation", MATCH_RELATIONS)
@pytest.mark.parametrize("caller", CALLERS)
def test_graph_shows_a_confirmed_match_to_exactly_those_who_see_it(stage, caller, relation):
    """The graph around a match's first record: its `same_as` edge is there exactly when the caller sees the match;
    never a node of a record the caller does not see."""
    Match.objects.filter(pk=stage.matches[relation].pk).update(status="confirmed")
    first, second = stage.ends[relation]
    response = stage.client(caller).get("/api/v1/graph/", {"entity": f"person:{first.pk}", "depth": 1})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    if caller != "superuser" and not RECORD_SEEN[MATCH_RELATIONS[relation][0]]:
        assert response.status_code == 404
        return
    assert response.status_code == 200, response.json()
    body = response.json()
    edges = {frozenset((edge["source"], edge["target"])) for edge in body["edges"] if edge["kind"] == "same_as"}
    shown = match_expected(caller, relation, "retrieve") == 200
    assert edges == ({frozenset((str(first.pk), str(second.pk)))} if shown else set())
    assert (str(second.pk) in {node["id"] for node in body["nodes"]}) is shown


# --- runs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_start_a_run(stage, caller):
    before = XrefRun.objects.count()
    response = stage.client(caller).post("/api/v1/xref/runs/", {}, format="json")
    starts = caller == "superuser" or caller in RUN_STARTERS
    want = 401 if caller == "anonymous" else 202 if starts else 403
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want == 202:
        assert response.json()["agency"] == "SSB"
        assert XrefRun.objects.filter(pk=response.json()["id"], agency=stage.agencies["a"]).exists()
    else:
        assert "detail" in response.json()
        assert XrefRun.objects.count() == before


@pytest.mark.parametrize("relation", RUN_RELATIONS)
@pytest.mark.parametrize("caller", CALLERS)
def test_run_matrix(stage, caller, relation):
    run = stage.runs[relation]
    client = stage.client(caller)
    want = run_expected(caller, relation)
    response = client.get(f"/api/v1/xref/runs/{run.pk}/")
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want == 200:
        assert response.json()["id"] == str(run.pk)
    listing = client.get("/api/v1/xref/runs/", {"page_size": 500})
    if caller == "anonymous":
        assert listing.status_code == 401
    else:
        assert (str(run.pk) in listed_ids(listing)) is (want == 200)


# --- deconfliction hits ------------------------------------------------------------------------------------------

HIT_MATRIX = [pytest.param(caller, relation, op, id=f"{caller}-{relation}-{op}")
              for caller in CALLERS for relation in HIT_RELATIONS for op in ("retrieve", *HIT_WRITES)]


def test_the_stage_has_hits_only_for_matches_across_agencies(stage):
    within = [match.pk for relation, match in stage.matches.items() if not relation.startswith("across")]
    assert not DeconflictionHit.objects.filter(match__in=within).exists()
    assert DeconflictionHit.objects.filter(archived=True).count() == 2


@pytest.mark.parametrize(("caller", "relation", "op"), HIT_MATRIX)
def test_hit_matrix(stage, caller, relation, op):
    hit = stage.hits[relation]
    want = hit_expected(caller, relation, op)
    before = list(DeconflictionHit.objects.order_by("pk").values_list("pk", "version", "archived", "score"))
    client = stage.client(caller)
    url = f"/api/v1/xref/hits/{hit.pk}/"
    if op == "retrieve":
        response = client.get(url)
    else:
        method, on_detail = HIT_WRITES[op]
        response = getattr(client, method)(url if on_detail else "/api/v1/xref/hits/",
                                           {"entity": {"type": "person", "id": str(hit.entity_id)}, "score": 0.1},
                                           format="json")
    assert response.status_code == want, (response.status_code, response.content[:300])
    if want >= 400:
        assert "detail" in response.json()
    if want == 200:
        body = response.json()
        assert body["id"] == str(hit.pk) and body["entity"]["id"] == str(hit.entity_id)
    assert list(DeconflictionHit.objects.order_by("pk").values_list("pk", "version", "archived", "score")) == before


@pytest.mark.parametrize("caller", CALLERS)
def test_hit_list_by_entity(stage, caller):
    """Filtering by either record of a hit's match: only the caller's own record finds the caller's hit; the other
    agency's record finds nothing (an empty list, not a count), even where a shared case shows that record."""
    client = stage.client(caller)
    for relation, hit in stage.hits.items():
        match = hit.match
        for entity in (match.left_id, match.right_id):
            response = client.get("/api/v1/xref/hits/", {"entity": str(entity)})
            if caller == "anonymous":
                assert response.status_code == 401
                continue
            shown = entity == hit.entity_id and hit_expected(caller, relation, "retrieve") == 200
            assert (str(hit.pk) in listed_ids(response)) is shown
            if caller != "superuser" and entity != hit.entity_id and hit.agency_id == stage.agencies["a"].pk:
                assert response.json()["count"] == 0
