"""Cross-referencing from the client's side (API.md § Cross-referencing, `same_as` on persons and organisations,
§ Graph): runs, matches and their filters, decisions and what they change, and what another agency's records never
show. Who may do what, role by role, is tests/test_access_matrix_xref.py."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from xref import services
from xref.models import Match, XrefRun

from . import factories

RUNS = "/api/v1/xref/runs/"
MATCHES = "/api/v1/xref/matches/"
RUN_FIELDS = {"id", "status", "progress", "started_at", "finished_at", "candidates", "matches"}
MATCH_FIELDS = {"id", "left", "right", "score", "features", "explanation", "status", "decided_by", "decided_at"}


def ref(entity: Any) -> dict[str, str]:
    return {"type": entity.type, "id": str(entity.pk), "name": entity.name}


def decide(client, match: Match, decision: str, **extra: Any):
    return client.post(f"{MATCHES}{match.pk}/decision/", {"decision": decision, **extra}, format="json")


def same_as(client, entity: Any) -> list[dict[str, str]]:
    response = client.get(f"/api/v1/{entity.type}s/{entity.pk}/")
    assert response.status_code == 200, response.json()
    return response.json()["same_as"]


def listed(client, params: dict[str, Any] | None = None) -> list[str]:
    response = client.get(MATCHES, {"page_size": 500, **(params or {})})
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def analyst(world):
    return factories.user(world.a, "analyst", world.a1, username="ana-a1")


@pytest.fixture
def ana(client_for, analyst):
    return client_for(analyst)


@pytest.fixture
def pair(world):
    """Two of SSB's persons that are the same man, and their pending match."""
    zhang = factories.person(world.a, "Zhang Wei", names=["张伟"], birth_date="1971-03-09", nationalities=["CN"])
    wei = factories.person(world.a, "Wei Zhang", birth_date="1971-03-09", nationalities=["CN"])
    return zhang, wei, factories.match(zhang, wei, score=0.93)


# --- runs ------------------------------------------------------------------------------------------------------


def test_a_run_answers_202_with_its_fields_and_is_followed_at_its_url(world, ana, analyst):
    response = ana.post(RUNS, {}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) >= RUN_FIELDS
    assert body["status"] in ("queued", "running", "succeeded")
    assert 0 <= body["progress"] <= 1
    assert body["agency"] == "SSB" and body["case"] is None and body["created_by"] == analyst.username
    assert response["Location"] == f"{RUNS}{body['id']}/"
    run = XrefRun.objects.get(pk=body["id"])
    assert run.agency == world.a and run.created_by == analyst

    detail = ana.get(f"{RUNS}{run.pk}/")
    assert detail.status_code == 200
    assert detail.json()["id"] == str(run.pk) and set(detail.json()) >= RUN_FIELDS
    assert detail["ETag"] == f'"{run.version}"'
    assert str(run.pk) in {row["id"] for row in ana.get(RUNS).json()["results"]}


def test_a_run_over_a_case_names_it(world, ana):
    case = factories.case(world.a, world.a1)
    response = ana.post(RUNS, {"case": str(case.pk)}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["case"] == str(case.pk)
    assert XrefRun.objects.get(pk=response.json()["id"]).case == case
    assert [row["id"] for row in ana.get(RUNS, {"case": str(case.pk)}).json()["results"]] == [response.json()["id"]]


def test_a_run_over_a_case_it_may_not_name_is_a_400_on_case(world, ana):
    theirs = factories.case(world.b, world.b1)
    shared = factories.case(world.b, world.b1)
    factories.share(shared, world.a, "write")  # seen, even written, but not SSB's to cross-reference
    hidden_own = factories.case(world.a, world.a2)  # another unit's: the analyst does not see it
    archived = factories.case(world.a, world.a1, archived=True)
    for value in (str(theirs.pk), str(shared.pk), str(hidden_own.pk), str(archived.pk),
                  "00000000-0000-4000-8000-000000000000", "not-a-uuid", 7, ["x"]):
        response = ana.post(RUNS, {"case": value}, format="json")
        assert response.status_code == 400, (value, response.json())
        assert list(response.json()) == ["case"], response.json()
    response = ana.post(RUNS, {"case": None, "scope": "all"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["scope"], response.json()
    assert ana.post(RUNS, [1, 2], format="json").status_code == 400
    assert not XrefRun.objects.exists()


def test_only_analysts_and_up_start_runs(world, client_for):
    for role in ("viewer", "auditor"):
        response = client_for(factories.user(world.a, role, world.a1)).post(RUNS, {}, format="json")
        assert response.status_code == 403 and "detail" in response.json()
    assert client_for(None).post(RUNS, {}, format="json").status_code == 401
    assert not XrefRun.objects.exists()


def test_a_run_needs_an_agency(world, client_for):
    """A superuser of no agency has no records to cross-reference: a 400 on `agency`, nothing queued."""
    root = factories.user(None, "viewer", is_superuser=True)
    response = client_for(root).post(RUNS, {}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert list(response.json()) == ["agency"]
    assert not XrefRun.objects.exists()


def test_another_agencys_run_is_404_and_not_listed(world, ana):
    theirs = factories.run(world.b)
    assert ana.get(f"{RUNS}{theirs.pk}/").status_code == 404
    assert ana.get(f"{RUNS}not-a-uuid/").status_code == 404
    assert ana.get(RUNS).json()["results"] == []


# --- matches: the fields and the filters ----------------------------------------------------------------------


def test_a_match_shows_its_records_score_features_and_explanation(world, ana, pair):
    zhang, wei, match = pair
    response = ana.get(MATCHES)
    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert set(row) >= MATCH_FIELDS
    left, right = sorted((zhang, wei), key=lambda entity: entity.pk)
    assert row["left"] == ref(left) and row["right"] == ref(right)
    assert row["score"] == pytest.approx(0.93)
    assert row["features"] == {"name": 0.94, "birth_date": 1.0}
    assert "birth date" in row["explanation"]
    assert (row["status"], row["decided_by"], row["decided_at"]) == ("pending", None, None)
    detail = ana.get(f"{MATCHES}{match.pk}/")
    assert detail.status_code == 200 and detail.json() == row
    assert detail["ETag"] == f'"{match.version}"'


def test_filters(world, ana, pair):
    _, wei, pending = pair
    org_a, org_b = factories.organization(world.a, "Red River Metals"), factories.organization(world.a, "Red River")
    orgs = factories.match(org_a, org_b, score=0.62)
    li, lee = factories.person(world.a, "Li Mei"), factories.person(world.a, "Lee Mei")
    rejected = factories.match(li, lee, score=0.55, status="rejected")
    case = factories.case(world.a, world.a1)
    factories.party(case, wei)
    hidden_case = factories.case(world.a, world.a2)  # the analyst does not see another unit's case
    factories.party(hidden_case, li)

    def ids(*matches: Match) -> set[str]:
        return {str(m.pk) for m in matches}

    assert set(listed(ana)) == ids(pending, orgs, rejected)
    assert listed(ana) == [str(pending.pk), str(orgs.pk), str(rejected.pk)], "the highest score first"
    assert set(listed(ana, {"status": "pending"})) == ids(pending, orgs)
    assert set(listed(ana, {"status": ["pending", "rejected"]})) == ids(pending, orgs, rejected)
    assert set(listed(ana, {"min_score": "0.6"})) == ids(pending, orgs)
    assert set(listed(ana, {"min_score": 0.93})) == ids(pending)
    assert set(listed(ana, {"entity": str(wei.pk)})) == ids(pending)
    assert set(listed(ana, {"entity": str(org_b.pk)})) == ids(orgs)
    assert set(listed(ana, {"case": str(case.pk)})) == ids(pending)
    assert listed(ana, {"case": str(hidden_case.pk)}) == []
    assert set(listed(ana, {"kind": "organization"})) == ids(orgs)
    assert set(listed(ana, {"kind": ["person", "organization"], "status": "rejected"})) == ids(rejected)
    assert set(listed(ana, {"q": "red river"})) == ids(orgs)
    assert listed(ana, {"ordering": "score"})[0] == str(rejected.pk)


@pytest.mark.parametrize(("param", "value"), [
    ("min_score", "abc"), ("min_score", "1e309"), ("min_score", "NaN"), ("min_score", "\x00"),
    ("status", "maybe"), ("status", "'; DROP TABLE xref_match; --"), ("kind", "vessel"),
    ("entity", "not-a-uuid"), ("entity", "person:00000000-0000-4000-8000-000000000000"), ("case", "%"),
    ("created_after", "2026-01-01T00:00:00+22:17"), ("q", "x" * 1001),
])
def test_a_bad_filter_value_is_a_400_naming_it(world, ana, pair, param, value):
    response = ana.get(MATCHES, {param: value})
    assert response.status_code == 400, response.content[:300]
    assert list(response.json()) == [param]


def test_archived_matches_are_hidden_unless_a_supervisor_asks(world, ana, client_for, supervisor, pair):
    _, _, match = pair
    Match.objects.filter(pk=match.pk).update(archived=True)
    assert listed(ana) == []
    assert ana.get(MATCHES, {"include_archived": "true"}).status_code == 403
    assert listed(client_for(supervisor), {"include_archived": "true"}) == [str(match.pk)]


# --- decisions ------------------------------------------------------------------------------------------------


def test_confirming_puts_each_record_in_the_others_same_as(world, ana, analyst, pair):
    zhang, wei, match = pair
    assert same_as(ana, zhang) == [] and same_as(ana, wei) == []
    response = decide(ana, match, "confirmed", note="Same passport photo.")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["decided_by"], body["note"]) == ("confirmed", analyst.username, "Same passport photo.")
    assert body["decided_at"] is not None and body["version"] == match.version + 1
    assert response["ETag"] == f'"{body["version"]}"'
    assert same_as(ana, zhang) == [ref(wei)]
    assert same_as(ana, wei) == [ref(zhang)]
    people = {row["id"]: row["same_as"] for row in ana.get("/api/v1/persons/").json()["results"]}
    assert people == {str(zhang.pk): [ref(wei)], str(wei.pk): [ref(zhang)]}
    event = AuditEvent.objects.get(action="decision", object_id=str(match.pk))
    assert event.actor == analyst.username
    assert event.changes["status"] == ["pending", "confirmed"]


def test_confirmations_join_transitively_and_pending_splits(world, ana, pair):
    zhang, wei, first = pair
    zhang_org = factories.person(world.a, "Zhang W.", birth_date="1971-03-09")
    second = factories.match(wei, zhang_org, score=0.81)
    assert decide(ana, first, "confirmed").status_code == 200
    assert decide(ana, second, "confirmed").status_code == 200
    assert same_as(ana, zhang) == sorted([ref(wei), ref(zhang_org)], key=lambda r: (r["name"], r["id"]))

    response = decide(ana, first, "pending")  # undo: Zhang Wei leaves the identity
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "pending"
    assert same_as(ana, zhang) == []
    assert same_as(ana, wei) == [ref(zhang_org)]
    assert same_as(ana, zhang_org) == [ref(wei)]


def test_pending_undoes_a_confirmation(world, ana, pair):
    zhang, wei, match = pair
    decide(ana, match, "confirmed")
    assert decide(ana, match, "pending").status_code == 200
    assert same_as(ana, zhang) == [] and same_as(ana, wei) == []
    assert Match.objects.get(pk=match.pk).status == "pending"
    assert listed(ana, {"status": "pending"}) == [str(match.pk)]


def test_a_rejected_pair_stays_rejected_when_its_records_are_cross_referenced_again(world, ana, analyst, pair):
    zhang, wei, match = pair
    response = decide(ana, match, "rejected", note="Different fathers' names.")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert same_as(ana, zhang) == []
    services.records_changed([zhang.pk, wei.pk])  # as after an edit of either
    services.run_create(agency=world.a, user=analyst, sync=True)  # and a full pass
    stored = Match.objects.get(pk=match.pk)
    assert (stored.status, stored.note) == ("rejected", "Different fathers' names.")
    assert Match.objects.filter(left__in=[zhang, wei], right__in=[zhang, wei]).count() == 1
    assert listed(ana, {"status": "pending"}) == []
    assert same_as(ana, zhang) == []


@pytest.mark.parametrize("body", [
    {"decision": "maybe"}, {"decision": "CONFIRMED"}, {"decision": ""}, {"decision": None}, {"decision": 1},
    {}, {"note": "no decision"}, {"decision": "confirmed", "status": "confirmed"},
    {"decision": "confirmed", "note": "a\x00b"}, {"decision": "confirmed", "note": ["x"]},
])
def test_a_bad_decision_is_a_400_and_changes_nothing(world, ana, pair, body):
    _, _, match = pair
    response = ana.post(f"{MATCHES}{match.pk}/decision/", body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()) <= {"decision", "note", "status"} and response.json()
    stored = Match.objects.get(pk=match.pk)
    assert (stored.status, stored.version) == ("pending", match.version)
    assert not AuditEvent.objects.filter(action="decision").exists()


def test_a_decision_with_a_stale_if_match_is_412(world, ana, pair):
    _, _, match = pair
    response = ana.post(f"{MATCHES}{match.pk}/decision/", {"decision": "confirmed"}, format="json",
                        HTTP_IF_MATCH=f'"{match.version + 1}"')
    assert response.status_code == 412 and "detail" in response.json()
    assert Match.objects.get(pk=match.pk).status == "pending"
    response = ana.post(f"{MATCHES}{match.pk}/decision/", {"decision": "confirmed"}, format="json",
                        HTTP_IF_MATCH=f'"{match.version}"')
    assert response.status_code == 200


def test_a_withdrawn_match_cannot_be_decided(world, ana, pair):
    _, _, match = pair
    Match.objects.filter(pk=match.pk).update(archived=True)
    response = decide(ana, match, "confirmed")
    assert response.status_code == 409, response.content[:300]
    assert Match.objects.get(pk=match.pk).status == "pending"


def test_viewers_do_not_decide(world, client_for, pair):
    _, _, match = pair
    viewer = client_for(factories.user(world.a, "viewer", world.a1))
    assert viewer.get(f"{MATCHES}{match.pk}/").status_code == 200
    response = decide(viewer, match, "confirmed")
    assert response.status_code == 403 and "detail" in response.json()
    assert Match.objects.get(pk=match.pk).status == "pending"


# --- another agency's records ---------------------------------------------------------------------------------


def test_another_agencys_match_is_404(world, ana):
    theirs = factories.match(factories.person(world.b, "Chen Jie"), factories.person(world.b, "Jie Chen"))
    for response in (ana.get(f"{MATCHES}{theirs.pk}/"), decide(ana, theirs, "confirmed"),
                     ana.get(f"{MATCHES}00000000-0000-4000-8000-000000000000/"), ana.get(f"{MATCHES}nope/")):
        assert response.status_code == 404 and "detail" in response.json()
    assert Match.objects.get(pk=theirs.pk).status == "pending"
    assert listed(ana) == []


def test_a_match_with_another_agencys_record_never_shows(world, ana, analyst, client_for):
    """Even where the other agency's record is visible through a shared case, a match across agencies reaches
    each side only as a deconfliction hit: not in the list, not at its URL, not in `same_as`, not in the graph."""
    mine = factories.person(world.a, "Zhang Wei", birth_date="1971-03-09")
    theirs = factories.person(world.b, "Zhang Wei", birth_date="1971-03-09")
    shared = factories.case(world.b, world.b1)
    factories.party(shared, theirs)
    factories.share(shared, world.a, "write")
    assert client_for(analyst).get(f"/api/v1/persons/{theirs.pk}/").status_code == 200  # seen through the share
    across = factories.confirmed(mine, theirs)  # as a superuser could have decided it
    for params in ({}, {"entity": str(mine.pk)}, {"entity": str(theirs.pk)}, {"status": "confirmed"},
                   {"case": str(shared.pk)}):
        assert listed(ana, params) == [], params
    assert ana.get(f"{MATCHES}{across.pk}/").status_code == 404
    assert decide(ana, across, "rejected").status_code == 404
    assert same_as(ana, mine) == [] and same_as(ana, theirs) == []
    graph = ana.get("/api/v1/graph/", {"entity": f"person:{mine.pk}", "depth": 2}).json()
    assert str(theirs.pk) not in {node["id"] for node in graph["nodes"]}
    assert not [edge for edge in graph["edges"] if edge["kind"] == "same_as"]


def test_another_agencys_match_seen_through_a_shared_case_is_read_only(world, ana):
    a, b = factories.person(world.b, "Chen Jie"), factories.person(world.b, "Jie Chen")
    shared = factories.case(world.b, world.b1)
    factories.party(shared, a)
    factories.party(shared, b)
    factories.share(shared, world.a, "write")
    theirs = factories.match(a, b)
    assert listed(ana) == [str(theirs.pk)]
    assert ana.get(f"{MATCHES}{theirs.pk}/").status_code == 200
    response = decide(ana, theirs, "confirmed")
    assert response.status_code == 403 and "detail" in response.json()
    assert Match.objects.get(pk=theirs.pk).status == "pending"


# --- the graph ------------------------------------------------------------------------------------------------


def test_the_graph_shows_confirmed_matches_as_same_as_edges(world, ana, pair):
    zhang, wei, match = pair

    def same_as_edges() -> list[dict[str, str]]:
        response = ana.get("/api/v1/graph/", {"entity": f"person:{zhang.pk}", "depth": 1})
        assert response.status_code == 200, response.json()
        return [edge for edge in response.json()["edges"] if edge["kind"] == "same_as"]

    assert same_as_edges() == [], "a pending match is a proposal, not an edge"
    assert ana.get("/api/v1/graph/path/", {"from": f"person:{zhang.pk}", "to": f"person:{wei.pk}"}).status_code == 404
    decide(ana, match, "confirmed")
    (edge,) = same_as_edges()
    assert {edge["source"], edge["target"]} == {str(zhang.pk), str(wei.pk)}
    assert edge["label"] == "same as (0.93)"
    path = ana.get("/api/v1/graph/path/", {"from": f"person:{zhang.pk}", "to": f"person:{wei.pk}"})
    assert path.status_code == 200
    assert [e["kind"] for e in path.json()["edges"]] == ["same_as"]
    decide(ana, match, "rejected")
    assert same_as_edges() == []
