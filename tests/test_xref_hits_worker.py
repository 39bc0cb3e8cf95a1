"""Deconfliction hits made by real Celery workers (issue 10 point 1): persons written through the API in two
agencies reach the worker through the outbox; each side then lists one hit naming the other agency. Archiving a
record withdraws both hits, a superuser's rejection too, and a full run again keeps one hit per side."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from django.core.management import call_command

from xref.models import DeconflictionHit, Match, XrefRun

from . import factories
from .test_xref_worker import _match
from .worker import wait_until, worker_process

HITS = "/api/v1/xref/hits/"
# The same three people written by each agency (as each spells them).
PEOPLE = [
    ({"name": "Luo Jianguo", "birth_date": "1969-03-18", "nationalities": ["CN"]},
     {"name": "LUO Jian Guo", "birth_date": "1969-03-18", "nationalities": ["CN"]}),
    ({"name": "Chen Meihua", "birth_date": "1972-11-05", "phones": ["+8613107350999"]},
     {"name": "Meihua Chen", "birth_date": "1972-11-05", "phones": ["+86 131 0735 0999"]}),
    ({"name": "Deng Kaiwen", "birth_date": "1981-06-30", "birth_place": "Hechi"},
     {"name": "Kaiwen Deng", "birth_date": "1981-06-30", "birth_place": "Hechi"}),
]


def hits_of(client) -> dict[str, dict[str, Any]]:
    """The caller's hits, by their record's id."""
    response = client.get(HITS, {"page_size": 500})
    assert response.status_code == 200, response.content[:300]
    return {item["entity"]["id"]: item for item in response.json()["results"]}


def rows() -> list[tuple[Any, ...]]:
    return sorted(DeconflictionHit.objects.values_list("id", "agency_id", "entity_id", "archived", "score",
                                                       "version"))


@pytest.mark.django_db(transaction=True)
def test_hits_follow_the_workers_matches_across_two_agencies(world, client_for, settings):
    apis = {code: client_for(factories.user(agency, "investigator", unit))
            for code, agency, unit in (("SSB", world.a, world.a1), ("ASB", world.b, world.b1))}
    superuser = client_for(factories.user(None, "viewer", is_superuser=True))
    with worker_process() as worker:
        settings.TASK_QUEUE_PREFIX = worker.prefix  # this process's sends go to the worker's queues
        ids: list[dict[str, str]] = []
        for ssb, asb in PEOPLE:
            made = {code: apis[code].post("/api/v1/persons/", body, format="json")
                    for code, body in (("SSB", ssb), ("ASB", asb))}
            assert all(response.status_code == 201 for response in made.values())
            ids.append({code: response.json()["id"] for code, response in made.items()})

        # Each side lists one hit per person, naming its own record and the other agency.
        def all_listed(code: str) -> dict[str, dict[str, Any]] | None:
            found = hits_of(apis[code])
            return found if len(found) == len(PEOPLE) else None

        for code, theirs in (("SSB", world.b), ("ASB", world.a)):
            listed = wait_until(functools.partial(all_listed, code))
            assert set(listed) == {pair[code] for pair in ids}
            for item in listed.values():
                assert item["other_agency"] == {"code": theirs.code, "name": theirs.name, "contact": theirs.contact}

        # Archiving one record withdraws both hits of its pair.
        first = ids[0]
        assert apis["ASB"].delete(f"/api/v1/persons/{first['ASB']}/").status_code == 204
        wait_until(lambda: first["SSB"] not in hits_of(apis["SSB"]))
        assert first["ASB"] not in hits_of(apis["ASB"])
        match = _match(first["SSB"], first["ASB"])
        assert list(DeconflictionHit.objects.filter(match=match).values_list("archived", flat=True)) == [True, True]

        # A superuser's rejection (only a superuser decides a pair across agencies) withdraws both at once.
        second = ids[1]
        match = _match(second["SSB"], second["ASB"])
        response = superuser.post(f"/api/v1/xref/matches/{match.pk}/decision/", {"decision": "rejected",
                                                                                  "note": "two people"}, format="json")
        assert response.status_code == 200, response.content
        for code in ("SSB", "ASB"):
            assert set(hits_of(apis[code])) == {ids[2][code]}

        # A full run by the workers, and more here: one hit per side still, the same rows (their scores follow
        # the match's, which a run's training may move; an unchanged pass rewrites nothing).
        before = rows()
        assert len(before) == 2 * len(PEOPLE)
        response = apis["SSB"].post("/api/v1/xref/runs/", {}, format="json")
        assert response.status_code == 202
        wait_until(lambda: XrefRun.objects.get(pk=response.json()["id"]).status == "succeeded", 120)
    call_command("xref", "--sync")
    after = rows()
    assert [row[:4] for row in after] == [row[:4] for row in before]
    for hit in DeconflictionHit.objects.select_related("match"):
        assert hit.score == hit.match.score
    call_command("xref", "--sync")
    assert rows() == after
    for code in ("SSB", "ASB"):
        assert set(hits_of(apis[code])) == {ids[2][code]}
    assert Match.objects.get(pk=match.pk).status == "rejected"
