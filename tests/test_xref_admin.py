"""Cross-referencing in the admin (issue 9, point 6): matches with their explanation, filtered by score and status,
decided in bulk through the same service as the API; only what the policy lets the user see."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from xref.models import Match

from . import factories

LIST = "/admin/xref/match/"


@pytest.fixture
def staff_client():
    return factories.admin_client


@pytest.fixture
def matches(world):
    """Three of SSB's matches at different scores, and one of ASB's that SSB's staff never see."""
    ssb = [factories.person(world.a, name) for name in ("Zhang Wei", "Wei Zhang", "Li Mei", "Lee Mei", "Chen Jie",
                                                        "Jie Chen")]
    high = factories.match(ssb[0], ssb[1], score=0.95, explanation="same birth date, name 0.94 (Zhang Wei ↔ 张伟)")
    middle = factories.match(ssb[2], ssb[3], score=0.75, explanation="name 0.88 (Li Mei ↔ Lee Mei)")
    low = factories.match(ssb[4], ssb[5], score=0.55, status="rejected", explanation="name 0.81 (Chen Jie)")
    theirs = factories.match(factories.person(world.b, "Hidden Person"), factories.person(world.b, "Person Hidden"),
                             score=0.99, explanation="the other agency's pair")
    return {"high": high, "middle": middle, "low": low, "theirs": theirs}


def shown(client, **params) -> str:
    page = client.get(LIST, params)
    assert page.status_code == 200
    return page.content.decode()


def test_the_list_shows_scores_explanations_and_only_what_the_policy_allows(world, staff_client, matches):
    client = staff_client(factories.user(world.a, "viewer", world.a1))
    text = shown(client)
    assert "Zhang Wei" in text and "0.95" in text and "same birth date" in text
    assert "Hidden Person" not in text and "the other agency&#x27;s pair" not in text
    assert client.get(f"{LIST}{matches['high'].pk}/change/").status_code == 200
    response = client.get(f"{LIST}{matches['theirs'].pk}/change/", follow=True)
    assert "Hidden Person" not in response.content.decode()


def test_filter_by_score_band_and_status(world, staff_client, matches):
    client = staff_client(factories.user(world.a, "analyst", world.a1))
    text = shown(client, score="0.9-")
    assert "Zhang Wei" in text and "Li Mei" not in text and "Chen Jie" not in text
    text = shown(client, score="0.7-0.9")
    assert "Li Mei" in text and "Zhang Wei" not in text
    text = shown(client, status="rejected")
    assert "Chen Jie" in text and "Zhang Wei" not in text and "Li Mei" not in text
    assert client.get(LIST, {"score": "high"}).status_code in (200, 302)  # Django's "?e=1": never a 500


def test_bulk_confirm_reject_and_pending_go_through_the_service(world, staff_client, matches):
    analyst = factories.user(world.a, "analyst", world.a1)
    client = staff_client(analyst)
    chosen = [matches["high"], matches["middle"], matches["theirs"]]  # the last is not theirs to decide
    response = client.post(LIST, {"action": "confirm_selected", "_selected_action": [str(m.pk) for m in chosen]})
    assert response.status_code == 302
    statuses = dict(Match.objects.values_list("pk", "status"))
    assert statuses[matches["high"].pk] == statuses[matches["middle"].pk] == "confirmed"
    assert statuses[matches["theirs"].pk] == "pending"
    high = Match.objects.get(pk=matches["high"].pk)
    assert high.decided_by == analyst and high.decided_at is not None
    events = AuditEvent.objects.filter(action="decision").values_list("object_id", flat=True)
    assert set(events) == {str(matches["high"].pk), str(matches["middle"].pk)}
    left = high.left
    assert [ref["id"] for ref in cluster_refs(left)] == [str(high.right_id)]

    client.post(LIST, {"action": "set_pending_selected", "_selected_action": [str(matches["high"].pk)]})
    assert Match.objects.get(pk=matches["high"].pk).status == "pending"
    assert cluster_refs(left) == []
    client.post(LIST, {"action": "reject_selected", "_selected_action": [str(matches["middle"].pk)]})
    assert Match.objects.get(pk=matches["middle"].pk).status == "rejected"


def cluster_refs(entity):
    from xref.services import same_as

    return same_as([entity.pk])[entity.pk]


def test_a_match_page_decides_one_match(world, staff_client, matches):
    analyst = factories.user(world.a, "analyst", world.a1)
    client = staff_client(analyst)
    match = matches["high"]
    response = client.post(f"{LIST}{match.pk}/change/", {"status": "rejected", "note": "Different fathers."})
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = Match.objects.get(pk=match.pk)
    assert (stored.status, stored.note, stored.decided_by) == ("rejected", "Different fathers.", analyst)
    assert AuditEvent.objects.filter(action="decision", object_id=str(match.pk)).count() == 1
    # The score, the records and the explanation are not the admin's to change.
    client.post(f"{LIST}{match.pk}/change/", {"status": "rejected", "note": "Different fathers.", "score": "0.1"})
    assert Match.objects.get(pk=match.pk).score == pytest.approx(0.95)


def test_viewers_neither_act_nor_decide(world, staff_client, matches):
    client = staff_client(factories.user(world.a, "viewer", world.a1))
    match = matches["high"]
    response = client.post(LIST, {"action": "confirm_selected", "_selected_action": [str(match.pk)]})
    assert response.status_code in (200, 302, 403)
    response = client.post(f"{LIST}{match.pk}/change/", {"status": "confirmed", "note": ""})
    assert response.status_code in (302, 403)
    assert Match.objects.get(pk=match.pk).status == "pending"
    assert not AuditEvent.objects.filter(action="decision").exists()


def test_runs_are_read_only_in_the_admin(world, staff_client):
    supervisor = factories.user(world.a, "supervisor", world.a1)
    mine = factories.run(world.a, supervisor, candidates=7314159)
    theirs = factories.run(world.b, candidates=9271828)
    client = staff_client(supervisor)
    page = client.get("/admin/xref/xrefrun/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "7314159" in text and "9271828" not in text
    assert client.get(f"/admin/xref/xrefrun/{mine.pk}/change/").status_code == 200
    assert client.get("/admin/xref/xrefrun/add/").status_code == 403
    response = client.post(f"/admin/xref/xrefrun/{mine.pk}/change/", {"status": "failed"})
    assert response.status_code == 403
    assert mine.__class__.objects.get(pk=mine.pk).status == "queued"
    assert theirs.status == "queued"
