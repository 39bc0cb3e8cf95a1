"""Deconfliction hits (API.md § Cross-referencing, `GET /xref/hits/`; issue 10 point 1): a match between records of
two agencies is one hit on each side, naming that side's own record, the other agency and whom to call there, and
the score; nothing of the other agency's record, whichever door a caller knocks on. Hits follow their match: made
and refreshed with it, withdrawn when a record is archived, the pair is rejected or no longer scores, and back when
the match holds again. Tested from both sides. (With real workers: tests/test_xref_hits_worker.py.)"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from django.db import connection, connections, transaction

from accounts.models import Agency
from entities import services as entity_services
from entities.models import Entity
from xref import services
from xref.models import DeconflictionHit, Match

from . import factories
from .worker import wait_until

pytestmark = pytest.mark.django_db

HITS = "/api/v1/xref/hits/"
ADMIN = "/admin/xref/deconflictionhit/"
HIT_FIELDS = {"id", "created_at", "updated_at", "version", "agency", "entity", "other_agency", "score"}
# Each side's record of the same man, each agency's own way: the other side's fields must never reach a caller.
RECORDS: dict[str, dict[str, Any]] = {
    "a": {"name": "Zhang Wei Antimony", "birth_date": "1975-03-02", "birth_place": "Lengshuijiang",
          "phones": ["+8613107350218"], "notes": "SSB-ONLY informant note"},
    "b": {"name": "Wei Zhang Antimony", "birth_date": "1975-03-02", "birth_place": "Hechi Guangxi",
          "phones": ["+8613107350218"], "notes": "ASB-ONLY seizure note"},
}
SIDES = ("a", "b")


def other(side: str) -> str:
    return "b" if side == "a" else "a"


@pytest.fixture
def duplicate(world) -> dict[str, Any]:
    """The same man written in each agency, cross-referenced: one match across the agencies, above the threshold."""
    records = {side: factories.person(getattr(world, side), **RECORDS[side]) for side in SIDES}
    services.records_changed([records["a"].pk, records["b"].pk])
    return records


@pytest.fixture
def callers(world, client_for) -> dict[str, Any]:
    """An analyst's API client on each side."""
    return {side: client_for(factories.user(getattr(world, side), "analyst", getattr(world, f"{side}1")))
            for side in SIDES}


def the_match(records: Mapping[str, Entity]) -> Match:
    return Match.objects.get(left_id__in=[r.pk for r in records.values()],
                             right_id__in=[r.pk for r in records.values()])


def hit_rows() -> list[tuple[Any, ...]]:
    return sorted(DeconflictionHit.objects.values_list("id", "agency__code", "entity_id", "other_agency__code",
                                                       "score", "archived", "version", "created_at", "updated_at"))


def live(agency: Agency) -> list[DeconflictionHit]:
    return list(DeconflictionHit.objects.filter(agency=agency, archived=False))


def listed(client, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    response = client.get(HITS, params or {})
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


# --- the lifecycle, in the services ---------------------------------------------------------------------------


def test_a_match_across_agencies_is_one_hit_on_each_side_naming_the_other_agency(world, duplicate):
    match = the_match(duplicate)
    assert match.left_agency_id != match.right_agency_id and match.score >= 0.5
    for side in SIDES:
        (hit,) = live(getattr(world, side))
        assert hit.entity_id == duplicate[side].pk
        assert hit.other_agency_id == getattr(world, other(side)).pk
        assert hit.match_id == match.pk and hit.score == match.score


def test_cross_referencing_again_changes_no_hit(world, duplicate):
    before = hit_rows()
    assert len(before) == 2
    services.records_changed([duplicate["a"].pk, duplicate["b"].pk])
    services.run_create(agency=world.a, sync=True)
    services.run_create(agency=world.b, sync=True)
    assert hit_rows() == before
    assert services.hits_sync([the_match(duplicate).pk]) == 0


def test_a_full_run_mends_hits_it_finds_missing(world, duplicate):
    DeconflictionHit.objects.all().delete()  # as on a database whose matches predate hits
    services.run_create(agency=world.b, sync=True)
    assert [len(live(world.a)), len(live(world.b))] == [1, 1]


def test_archiving_either_record_withdraws_both_hits(world, duplicate):
    entity_services.entity_archive(entity=duplicate["b"], actor=None)
    services.records_changed([duplicate["b"].pk])  # what the worker does after the archive's commit
    hits = DeconflictionHit.objects.all()
    assert len(hits) == 2 and all(hit.archived for hit in hits)


def test_an_archived_record_withdraws_the_hits_of_a_decided_match_too(world, duplicate):
    """A confirmed match keeps its decision when a record is archived; its hits still go (nothing to call about)."""
    superuser = factories.user(None, "viewer", is_superuser=True)
    services.match_decide(superuser, the_match(duplicate), decision="confirmed")
    entity_services.entity_archive(entity=duplicate["a"], actor=None)
    services.records_changed([duplicate["a"].pk])
    assert the_match(duplicate).status == "confirmed"
    assert not live(world.a) and not live(world.b)


def test_a_rejection_withdraws_both_hits_and_pending_brings_them_back(world, duplicate):
    superuser = factories.user(None, "viewer", is_superuser=True)
    match = the_match(duplicate)
    first = {hit.pk: hit.created_at for hit in DeconflictionHit.objects.all()}
    services.match_decide(superuser, match, decision="rejected", note="two men")
    assert DeconflictionHit.objects.filter(archived=True).count() == 2
    services.records_changed([duplicate["a"].pk, duplicate["b"].pk])  # a rejected pair stays rejected, hits gone
    assert not live(world.a) and not live(world.b)
    services.match_decide(superuser, match, decision="pending")
    assert {hit.pk: hit.created_at for hit in DeconflictionHit.objects.filter(archived=False)} == first


def test_a_pair_that_no_longer_scores_withdraws_its_hits(world, duplicate):
    entity_services.entity_update(entity=duplicate["b"], actor=None,
                                  data={"name": "Maria Gonzalez", "birth_date": None, "phones": []})
    services.records_changed([duplicate["b"].pk])
    assert the_match(duplicate).archived
    assert DeconflictionHit.objects.filter(archived=True).count() == 2


def test_a_new_score_refreshes_both_hits(world, duplicate):
    match = the_match(duplicate)
    Match.objects.filter(pk=match.pk).update(score=0.61)  # as a re-score would leave it
    assert services.hits_sync([match.pk]) == 2
    assert sorted(DeconflictionHit.objects.values_list("score", "version")) == [(0.61, 2), (0.61, 2)]


def test_a_match_within_one_agency_is_no_hit(world):
    people = [factories.person(world.a, RECORDS[side]["name"], birth_date=RECORDS[side]["birth_date"])
              for side in SIDES]
    services.records_changed([p.pk for p in people])
    assert Match.objects.filter(archived=False).count() == 1
    assert not DeconflictionHit.objects.exists()


def test_a_watchlist_entry_is_reference_data_not_a_hit(world, duplicate):
    """A listed record (`lists`, kept by watchlist imports) matching another agency's record is screening's
    business: its hits are withdrawn, and a new listed record makes none."""
    Entity.objects.filter(pk=duplicate["b"].pk).update(lists=["ofac-sdn"])
    services.records_changed([duplicate["b"].pk])
    assert not live(world.a) and not live(world.b)
    listed_entry = factories.person(world.b, RECORDS["a"]["name"], birth_date=RECORDS["a"]["birth_date"],
                                    lists=["ofac-sdn"])
    services.records_changed([listed_entry.pk])
    assert Match.objects.filter(archived=False, right_agency=world.b).exists() or \
        Match.objects.filter(archived=False, left_agency=world.b).exists()
    assert not DeconflictionHit.objects.filter(entity=listed_entry).exists()
    assert not live(world.a)


# --- the API, from both sides ---------------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_each_side_sees_its_own_record_the_other_agency_and_whom_to_call(world, duplicate, callers, side):
    (item,) = listed(callers[side])
    assert set(item) == HIT_FIELDS
    mine, theirs = getattr(world, side), getattr(world, other(side))
    assert item["agency"] == mine.code
    assert item["entity"] == {"type": "person", "id": str(duplicate[side].pk), "name": RECORDS[side]["name"]}
    assert item["other_agency"] == {"code": theirs.code, "name": theirs.name, "contact": theirs.contact}
    assert item["score"] == pytest.approx(the_match(duplicate).score)
    detail = callers[side].get(f"{HITS}{item['id']}/")
    assert detail.status_code == 200 and detail.json() == item
    assert detail["ETag"] == f'"{item["version"]}"'


@pytest.mark.parametrize("side", SIDES)
def test_the_other_sides_hit_is_404(world, duplicate, callers, side):
    theirs = DeconflictionHit.objects.get(agency=getattr(world, other(side)))
    response = callers[side].get(f"{HITS}{theirs.pk}/")
    assert response.status_code == 404 and "detail" in response.json()


def test_withdrawn_hits_are_hidden_from_everyone(world, duplicate, callers, client_for, supervisor):
    superuser = factories.user(None, "viewer", is_superuser=True)
    services.match_decide(superuser, the_match(duplicate), decision="rejected")
    mine = DeconflictionHit.objects.get(agency=world.a)
    assert listed(callers["a"]) == [] and listed(callers["b"]) == []
    assert listed(client_for(supervisor), {"include_archived": "true"}) == []
    assert listed(client_for(superuser)) == []
    assert callers["a"].get(f"{HITS}{mine.pk}/").status_code == 404


def test_hits_are_read_only(world, duplicate, callers, client_for, supervisor):
    hit = DeconflictionHit.objects.get(agency=world.a)
    client = client_for(supervisor)
    before = hit_rows()
    for response in (client.post(HITS, {"entity": {"type": "person", "id": str(duplicate["a"].pk)}}, format="json"),
                     client.patch(f"{HITS}{hit.pk}/", {"score": 0.1}, format="json"),
                     client.delete(f"{HITS}{hit.pk}/")):
        assert response.status_code == 405 and "detail" in response.json()
    assert hit_rows() == before


def test_filters_q_and_ordering(world, callers):
    """Three of SSB's records, each with a duplicate in ASB (two) or CGX (one)."""
    cgx = factories.agency("CGX", "Coast Guard")
    names = ["Luo Jianguo", "Chen Meihua", "Deng Kaiwen"]
    ours = [factories.person(world.a, name, birth_date=f"196{i}-0{i + 1}-1{i}") for i, name in enumerate(names)]
    theirs = [factories.person(agency, name, birth_date=f"196{i}-0{i + 1}-1{i}")
              for i, (name, agency) in enumerate(zip(names, (world.b, world.b, cgx), strict=True))]
    services.records_changed([p.pk for p in ours + theirs])
    hits = {hit.entity_id: hit for hit in DeconflictionHit.objects.filter(agency=world.a)}
    assert set(hits) == {p.pk for p in ours}
    DeconflictionHit.objects.filter(pk=hits[ours[0].pk].pk).update(score=0.55)
    client = callers["a"]

    def names_of(params: dict[str, Any]) -> list[str]:
        return [item["entity"]["name"] for item in listed(client, params)]

    assert sorted(names_of({})) == sorted(names)
    assert names_of({"entity": str(ours[1].pk)}) == ["Chen Meihua"]
    assert sorted(names_of({"other_agency": "ASB"})) == ["Chen Meihua", "Luo Jianguo"]
    assert names_of({"other_agency": "cgx"}) == ["Deng Kaiwen"]
    assert sorted(names_of({"other_agency": "CGX,ASB"})) == sorted(names)
    assert names_of({"other_agency": "NOPE"}) == []
    assert "Luo Jianguo" not in names_of({"min_score": "0.6"})
    assert names_of({"q": "meihua"}) == ["Chen Meihua"]
    assert names_of({"ordering": "score"})[0] == "Luo Jianguo"
    assert names_of({"ordering": "-score"})[-1] == "Luo Jianguo"
    for days, record in enumerate(ours):  # made in one transaction: one instant; set apart
        DeconflictionHit.objects.filter(pk=hits[record.pk].pk).update(
            created_at=hits[record.pk].created_at - dt.timedelta(days=days))
    assert names_of({"ordering": "created_at"}) == names[::-1]
    assert names_of({"ordering": "-created_at"}) == names
    later = {"created_after": "2999-01-01T00:00:00Z"}
    assert names_of(later) == [] and names_of({"updated_after": "2999-01-01T00:00:00Z"}) == []


@pytest.mark.parametrize(("param", "value"), [("entity", "nope"), ("min_score", "high"),
                                              ("created_after", "yesterday"), ("q", "x" * 1001)])
def test_a_bad_filter_value_is_a_400_naming_it(world, duplicate, callers, param, value):
    response = callers["a"].get(HITS, {param: value})
    assert response.status_code == 400 and list(response.json()) == [param]


# --- nothing of the other agency's record, through any door ---------------------------------------------------


def leaks(response: Any, record: Entity, side_fields: dict[str, Any]) -> list[str]:
    """What of `record` (its id, name and own field values) a response shows."""
    text = response.content.decode()
    if response.get("Content-Type", "").startswith("application/json"):
        text = json.dumps(response.json(), ensure_ascii=False)
    secrets = [str(record.pk), side_fields["name"], side_fields["birth_place"], side_fields["notes"]]
    return [secret for secret in secrets if secret in text]


@pytest.mark.parametrize("side", SIDES)
def test_nothing_of_the_other_agencys_record_reaches_a_caller(world, duplicate, callers, side):
    """Through hits, matches (filtered by the other record's id: an empty list, not a count), persons (`same_as`
    even once a superuser confirmed the pair), search, the graph and error messages."""
    superuser = factories.user(None, "viewer", is_superuser=True)
    services.match_decide(superuser, the_match(duplicate), decision="confirmed")
    client, mine, theirs = callers[side], duplicate[side], duplicate[other(side)]
    fields = RECORDS[other(side)]
    foreign = str(theirs.pk)
    responses = {
        "hits": client.get(HITS),
        "hits by their id": client.get(HITS, {"entity": foreign}),
        "hits by their name": client.get(HITS, {"q": fields["name"]}),
        "hit of theirs": client.get(f"{HITS}{DeconflictionHit.objects.get(entity=theirs).pk}/"),
        "hit by their id": client.get(f"{HITS}{foreign}/"),
        "matches": client.get("/api/v1/xref/matches/"),
        "matches by their id": client.get("/api/v1/xref/matches/", {"entity": foreign}),
        "match": client.get(f"/api/v1/xref/matches/{the_match(duplicate).pk}/"),
        "my person": client.get(f"/api/v1/persons/{mine.pk}/"),
        "persons": client.get("/api/v1/persons/", {"page_size": 500}),
        "persons by name": client.get("/api/v1/persons/", {"name": fields["name"]}),
        "their person": client.get(f"/api/v1/persons/{foreign}/"),
        "search": client.get("/api/v1/search/", {"q": fields["name"]}),
        "graph": client.get("/api/v1/graph/", {"entity": f"person:{mine.pk}", "depth": 3}),
        "graph of theirs": client.get("/api/v1/graph/", {"entity": f"person:{foreign}", "depth": 1}),
        "path": client.get("/api/v1/graph/path/", {"from": f"person:{mine.pk}", "to": f"person:{foreign}"}),
        "a link to theirs": client.post("/api/v1/links/", {"kind": "associate", "source": {
            "type": "person", "id": str(mine.pk)}, "target": {"type": "person", "id": foreign}}, format="json"),
    }
    for door, response in responses.items():
        assert response.status_code < 500, door
        found = [s for s in leaks(response, theirs, fields) if not (s == foreign and door in QUOTES_THE_ASKED_ID)]
        assert found == [], (door, response.status_code, found)
    assert responses["matches by their id"].json()["count"] == 0
    assert responses["hits by their id"].json()["count"] == 0
    assert responses["hits by their name"].json()["count"] == 0
    for door in ("hit of theirs", "hit by their id", "match", "their person", "graph of theirs", "path"):
        assert responses[door].status_code == 404, door
    assert responses["a link to theirs"].status_code == 400
    assert responses["my person"].json()["same_as"] == []
    (item,) = responses["hits"].json()["results"]
    assert item["entity"]["id"] == str(mine.pk)


# An error may repeat the id the caller sent (it is theirs already); never the record's name or fields.
QUOTES_THE_ASKED_ID = frozenset({"a link to theirs"})


# --- the admin ------------------------------------------------------------------------------------------------



@pytest.mark.parametrize("side", SIDES)
def test_the_admin_lists_the_agencys_hits_read_only_withdrawn_ones_shown(world, duplicate, side):
    mine, theirs = getattr(world, side), getattr(world, other(side))
    client = factories.admin_client(factories.user(mine, "viewer", getattr(world, f"{side}1")))
    page = client.get(ADMIN)
    assert page.status_code == 200
    text = page.content.decode()
    assert RECORDS[side]["name"] in text and theirs.contact in text and "0.9" in text
    assert RECORDS[other(side)]["name"] not in text and str(duplicate[other(side)].pk) not in text
    hit = DeconflictionHit.objects.get(agency=mine)
    detail = client.get(f"{ADMIN}{hit.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert RECORDS[other(side)]["name"] not in body and str(duplicate[other(side)].pk) not in body
    assert str(hit.match_id) not in body
    assert 'name="_save"' not in body  # read-only
    theirs_hit = DeconflictionHit.objects.get(agency=theirs)
    assert RECORDS[other(side)]["name"] not in client.get(f"{ADMIN}{theirs_hit.pk}/change/", follow=True
                                                          ).content.decode()
    assert client.get(f"{ADMIN}add/").status_code == 403
    before = hit_rows()
    client.post(f"{ADMIN}{hit.pk}/change/", {"score": "0.1"})
    assert hit_rows() == before

    superuser = factories.user(None, "viewer", is_superuser=True)
    services.match_decide(superuser, the_match(duplicate), decision="rejected")
    text = client.get(ADMIN, {"archived__exact": "1"}).content.decode()
    assert RECORDS[side]["name"] in text and "icon-yes" in text


def test_the_admin_filters_by_agency_other_agency_and_score_and_searches_names(world, duplicate):
    client = factories.admin_client(factories.user(None, "viewer", is_superuser=True))
    name_a, name_b = RECORDS["a"]["name"], RECORDS["b"]["name"]

    def shown(**params: str) -> str:
        page = client.get(ADMIN, params)
        assert page.status_code == 200
        return page.content.decode()

    text = shown(agency__id__exact=str(world.a.pk))
    assert name_a in text and name_b not in text
    text = shown(other_agency__id__exact=str(world.a.pk))
    assert name_b in text and name_a not in text
    assert name_a in shown(score="0.9-") and name_a not in shown(score="-0.5")
    text = shown(q="antimony")
    assert name_a in text and name_b in text
    text = shown(q="gonzalez")
    assert name_a not in text and name_b not in text


def test_the_admins_bulk_rejection_withdraws_the_hits(world, duplicate):
    client = factories.admin_client(factories.user(None, "viewer", is_superuser=True))
    response = client.post("/admin/xref/match/", {"action": "reject_selected",
                                                   "_selected_action": [str(the_match(duplicate).pk)]})
    assert response.status_code == 302
    assert the_match(duplicate).status == "rejected"
    assert DeconflictionHit.objects.filter(archived=True).count() == 2


def lock_waiters() -> int:
    """Sessions of this test's database waiting for a lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_a_rejection_racing_a_workers_sync_leaves_the_hits_withdrawn(world):
    """A worker syncing a pair's hits while a superuser's rejection of it is not yet committed waits for the
    decision and sees it, rather than bringing back the hits the decision withdrew from what it read before."""
    records = {side: factories.person(getattr(world, side), **RECORDS[side]) for side in SIDES}
    services.records_changed([records["a"].pk, records["b"].pk])
    match = the_match(records)
    superuser = factories.user(None, "viewer", is_superuser=True)
    decided, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def decide() -> None:
        try:
            with transaction.atomic():
                services.match_decide(superuser, match, decision="rejected")
                decided.set()
                release.wait(30)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
            decided.set()
        finally:
            connections.close_all()

    def sync() -> None:
        try:
            with transaction.atomic():
                services.hits_sync([match.pk])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    decider = threading.Thread(target=decide)
    decider.start()
    assert decided.wait(30)
    syncer = threading.Thread(target=sync)
    syncer.start()
    wait_until(lock_waiters, 30, 0.05)  # the sync waits for the decision's commit
    release.set()
    decider.join(30)
    syncer.join(30)
    assert not errors and not decider.is_alive() and not syncer.is_alive()
    assert list(DeconflictionHit.objects.values_list("archived", flat=True)) == [True, True]
