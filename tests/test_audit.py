"""The audit trail from the client's side: what every write records, who may read it, and that it cannot be altered
unnoticed (the PostgreSQL trigger, `verify_audit`, concurrent writers on one chain)."""

from __future__ import annotations

import io
import json
import threading
import uuid
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils.timezone import now as timezone_now
from rest_framework.test import APIClient

from audit.models import AuditEvent, ChainHead
from audit.services import compute_hash, prepare_events, record, record_many, verify_chain
from cases.models import Case, Note
from core import context

from . import factories

CASES = "/api/v1/cases/"
AUDIT = "/api/v1/audit/"
VERIFY = "/api/v1/audit/verify/"
PASSWORD = "correct horse battery"


def chain_events(agency, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(chain=str(agency.pk), **filters).order_by("seq"))


def last_seq(agency) -> int:
    head = ChainHead.objects.filter(chain=str(agency.pk)).first()
    return head.last_seq if head else 0


def written_since(agency, seq: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(chain=str(agency.pk), seq__gt=seq).order_by("seq"))


def only_event(agency, seq: int) -> AuditEvent:
    new = written_since(agency, seq)
    assert len(new) == 1, [(e.action, e.object_type) for e in new]
    return new[0]


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def people(world):
    """Readers and writers of agency A, and an auditor of agency B."""
    return SimpleNamespace(
        inv=factories.user(world.a, "investigator", world.a1, username="inv-a1"),
        sup=factories.user(world.a, "supervisor", world.a1, username="sup-a"),
        aud_a=factories.user(world.a, "auditor", username="aud-a"),
        aud_b=factories.user(world.b, "auditor", username="aud-b"),
        inv_b=factories.user(world.b, "investigator", world.b1, username="inv-b1"),
    )


# --- what each write records ---------------------------------------------------------------------


def test_every_case_write_records_its_event(world, people, client_for):
    inv, sup = client_for(people.inv), client_for(people.sup)
    person = factories.person(world.a, "Li Wei")

    # create
    seq = last_seq(world.a)
    response = inv.post(CASES, {"title": "Antimony ring", "classification": "confidential",
                                "commodities": ["antimony"], "members": ["sup-a"], "tags": ["smuggling"]},
                        format="json", HTTP_X_REQUEST_ID="req-create-1")
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "req-create-1"
    case_id = response.json()["id"]
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("create", "case", case_id)
    assert (event.actor, event.actor_id, event.agency_code) == ("inv-a1", people.inv.pk, "SSB")
    assert str(event.case_id) == case_id
    assert event.request_id == "req-create-1"
    assert event.ip == "127.0.0.1"
    assert event.changes["title"] == [None, "Antimony ring"]
    assert event.changes["classification"] == [None, "confidential"]
    assert event.changes["status"] == [None, "open"]
    assert event.changes["unit"] == [None, str(world.a1.pk)]
    assert event.changes["lead"] == [None, str(people.inv.pk)]
    assert event.changes["members"] == [None, [str(people.sup.pk)]]
    assert event.changes["commodities"] == [None, ["antimony"]]
    assert event.changes["tags"] == [None, ["smuggling"]]
    assert event.changes["reference"] == [None, response.json()["reference"]]
    assert all(isinstance(v, list) and len(v) == 2 for v in event.changes.values())
    assert not {"version", "updated_at", "created_at"} & set(event.changes)

    # update: only what changed
    seq = last_seq(world.a)
    response = inv.patch(f"{CASES}{case_id}/", {"title": "Antimony ring (Guangxi)", "priority": "high"},
                         format="json", HTTP_X_REQUEST_ID="req-update-1")
    assert response.status_code == 200, response.content
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id, event.actor) == ("update", "case", case_id,
                                                                               "inv-a1")
    assert event.changes == {"title": ["Antimony ring", "Antimony ring (Guangxi)"],
                             "priority": ["medium", "high"]}
    assert event.request_id == "req-update-1"

    # an update that changes nothing records nothing
    seq = last_seq(world.a)
    assert inv.patch(f"{CASES}{case_id}/", {"priority": "high"}, format="json").status_code == 200
    assert written_since(world.a, seq) == []

    # members are recorded as ids, old and new
    seq = last_seq(world.a)
    assert inv.patch(f"{CASES}{case_id}/", {"members": []}, format="json").status_code == 200
    assert only_event(world.a, seq).changes == {"members": [[str(people.sup.pk)], []]}

    # transition
    seq = last_seq(world.a)
    response = inv.patch(f"{CASES}{case_id}/", {"status": "investigating"}, format="json",
                         HTTP_X_REQUEST_ID="req-transition-1")
    assert response.status_code == 200, response.content
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("transition", "case", case_id)
    assert event.changes == {"status": ["open", "investigating"]}
    assert event.request_id == "req-transition-1"

    # a refused transition records nothing
    seq = last_seq(world.a)
    assert inv.patch(f"{CASES}{case_id}/", {"status": "open"}, format="json").status_code == 409
    assert written_since(world.a, seq) == []

    # party add
    seq = last_seq(world.a)
    response = inv.post(f"{CASES}{case_id}/parties/", {"entity": {"type": "person", "id": str(person.pk)},
                                                       "role": "ringleader"},
                        format="json", HTTP_X_REQUEST_ID="req-party-1")
    assert response.status_code == 201, response.content
    party_id = response.json()["id"]
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("create", "caseparty", party_id)
    assert (event.actor, str(event.case_id), event.request_id) == ("inv-a1", case_id, "req-party-1")
    assert event.changes["entity"] == [None, str(person.pk)]
    assert event.changes["role"] == [None, "ringleader"]
    assert event.changes["case"] == [None, case_id]

    # party update
    seq = last_seq(world.a)
    response = inv.patch(f"{CASES}{case_id}/parties/{party_id}/", {"custody_status": "wanted"}, format="json")
    assert response.status_code == 200, response.content
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("update", "caseparty", party_id)
    assert event.changes == {"custody_status": ["at_large", "wanted"]}

    # note
    seq = last_seq(world.a)
    response = inv.post(f"{CASES}{case_id}/notes/", {"body": "Courier seen at Dongxing."}, format="json",
                        HTTP_X_REQUEST_ID="req-note-1")
    assert response.status_code == 201, response.content
    note_id = response.json()["id"]
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("create", "note", note_id)
    assert (event.actor, str(event.case_id), event.request_id) == ("inv-a1", case_id, "req-note-1")
    assert event.changes["body"] == [None, "Courier seen at Dongxing."]
    assert event.changes["author"] == [None, str(people.inv.pk)]

    # share (supervisors)
    seq = last_seq(world.a)
    response = sup.post(f"{CASES}{case_id}/shares/", {"agency": "ASB", "access": "read"}, format="json",
                        HTTP_X_REQUEST_ID="req-share-1")
    assert response.status_code == 201, response.content
    share_id = response.json()["id"]
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("share", "caseshare", share_id)
    assert (event.actor, str(event.case_id), event.request_id) == ("sup-a", case_id, "req-share-1")
    assert event.changes["agency"] == [None, str(world.b.pk)]
    assert event.changes["access"] == [None, "read"]
    assert event.changes["shared_by"] == [None, str(people.sup.pk)]
    # The share is recorded on the owning agency's chain, not the receiving one's.
    assert not AuditEvent.objects.filter(chain=str(world.b.pk)).exists()

    # archive (supervisors)
    seq = last_seq(world.a)
    response = sup.delete(f"{CASES}{case_id}/", HTTP_X_REQUEST_ID="req-archive-1")
    assert response.status_code == 204, response.content
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("archive", "case", case_id)
    assert event.changes == {"archived": [False, True]}
    assert (event.actor, event.request_id) == ("sup-a", "req-archive-1")

    # archiving again changes nothing and records nothing
    seq = last_seq(world.a)
    assert sup.delete(f"{CASES}{case_id}/").status_code == 204
    assert written_since(world.a, seq) == []

    assert verify_chain(str(world.a.pk)).ok


def test_refused_writes_record_nothing(world, people, client_for):
    case = factories.case(world.a, world.a1, lead=people.inv)
    seq = last_seq(world.a)
    viewer = factories.user(world.a, "viewer", world.a1)
    assert client_for(viewer).post(CASES, {"title": "x"}, format="json").status_code == 403
    assert client_for(viewer).patch(f"{CASES}{case.pk}/", {"title": "x"}, format="json").status_code == 403
    assert client_for(people.inv).delete(f"{CASES}{case.pk}/").status_code == 403
    assert client_for(people.inv).post(CASES, {"title": ""}, format="json").status_code == 400
    assert written_since(world.a, seq) == []


def test_each_request_has_its_own_id_and_all_its_events_share_it(world, people, client_for):
    client = client_for(people.inv)
    ids = []
    for _ in range(2):
        seq = last_seq(world.a)
        response = client.post(CASES, {"title": "Two requests"}, format="json")
        assert response.status_code == 201
        event = only_event(world.a, seq)
        assert event.request_id == response["X-Request-ID"]
        uuid.UUID(event.request_id)  # generated when the caller sends none
        ids.append(event.request_id)
    assert ids[0] != ids[1]

    # A request that writes several events (sign-in: `login` then `token_issued`) gives them one id.
    seq = last_seq(world.a)
    response = APIClient().post("/api/v1/auth/tokens/", {"username": "inv-a1", "password": PASSWORD},
                                format="json", HTTP_X_REQUEST_ID="signin.42")
    assert response.status_code == 201
    new = written_since(world.a, seq)
    assert [e.action for e in new] == ["login", "token_issued"]
    assert {e.request_id for e in new} == {"signin.42"}


@pytest.mark.parametrize("supplied", ["has spaces", "x" * 65, "semi;colon", "<script>"])
def test_an_unusable_request_id_is_replaced(world, people, client_for, supplied):
    seq = last_seq(world.a)
    response = client_for(people.inv).post(CASES, {"title": "Odd id"}, format="json",
                                           HTTP_X_REQUEST_ID=supplied)
    assert response.status_code == 201
    event = only_event(world.a, seq)
    assert event.request_id != supplied
    assert event.request_id == response["X-Request-ID"]


def test_viewing_a_case_detail_is_recorded(world, people, client_for):
    case = factories.case(world.a, world.a1, lead=people.inv)
    client = client_for(people.inv)
    seq = last_seq(world.a)
    assert client.get(CASES).status_code == 200
    assert written_since(world.a, seq) == []  # lists are not recorded, details are
    assert client.get(f"{CASES}{case.pk}/", HTTP_X_REQUEST_ID="req-view-1").status_code == 200
    event = only_event(world.a, seq)
    assert (event.action, event.object_type, event.object_id) == ("view", "case", str(case.pk))
    assert (event.actor, event.actor_id, event.case_id) == ("inv-a1", people.inv.pk, case.pk)
    assert event.request_id == "req-view-1"
    # An invisible case is a 404 and records nothing.
    other = factories.case(world.b, world.b1)
    seq = last_seq(world.a)
    assert client.get(f"{CASES}{other.pk}/").status_code == 404
    assert written_since(world.a, seq) == []
    assert not AuditEvent.objects.filter(chain=str(world.b.pk)).exists()


def test_a_view_through_a_session_names_its_viewer(world, people):
    """The browsable API signs in with a session: the event still names who looked."""
    case = factories.case(world.a, world.a1, lead=people.inv)
    client = APIClient()
    client.force_login(people.inv)
    seq = last_seq(world.a)
    assert client.get(f"{CASES}{case.pk}/").status_code == 200
    event = only_event(world.a, seq)
    assert event.action == "view"
    assert (event.actor, event.actor_id) == ("inv-a1", people.inv.pk)


def test_a_view_of_a_shared_case_is_recorded_on_the_owners_chain(world, people, client_for):
    case = factories.case(world.a, world.a1, lead=people.inv)
    factories.share(case, world.b, "read", by=people.sup)
    seq_a = last_seq(world.a)
    assert client_for(people.inv_b).get(f"{CASES}{case.pk}/").status_code == 200
    event = only_event(world.a, seq_a)
    assert (event.action, event.actor, event.object_id) == ("view", "inv-b1", str(case.pk))


# --- who reads the trail -------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [("auditor", 200), ("supervisor", 200), ("agency_admin", 200),
                                          ("viewer", 403), ("analyst", 403), ("investigator", 403)])
def test_the_audit_trail_is_for_auditors_supervisors_and_admins(world, client_for, role, status):
    user = factories.user(world.a, role, world.a1)
    client = client_for(user)
    for url in (AUDIT, VERIFY):
        response = client.get(url)
        assert response.status_code == status, (url, response.content)
        assert response["Content-Type"].startswith("application/json")


def test_the_audit_trail_needs_credentials(world):
    assert APIClient().get(AUDIT).status_code == 401
    assert APIClient().get(VERIFY).status_code == 401


def test_the_audit_trail_is_read_only(world, people, client_for):
    client = client_for(people.aud_a)
    factories.case(world.a, world.a1)
    client_for(people.inv).post(CASES, {"title": "One event"}, format="json")
    event = chain_events(world.a)[-1]
    assert client.post(AUDIT, {"action": "create"}, format="json").status_code == 405
    assert client.patch(f"{AUDIT}{event.seq}/", {"action": "view"}, format="json").status_code == 405
    assert client.delete(f"{AUDIT}{event.seq}/").status_code == 405
    assert chain_events(world.a)[-1].action == "create"


def test_an_event_reads_as_the_contract_says(world, people, client_for):
    response = client_for(people.inv).post(CASES, {"title": "Shape"}, format="json")
    event = chain_events(world.a)[-1]
    listed = results(client_for(people.aud_a).get(AUDIT))[0]
    assert {"seq", "at", "actor", "agency", "action", "object_type", "object_id", "changes", "request_id", "ip",
            "prev_hash", "hash"} <= set(listed)
    assert listed["seq"] == event.seq and listed["hash"] == event.hash and listed["prev_hash"] == event.prev_hash
    assert (listed["actor"], listed["agency"], listed["action"]) == ("inv-a1", "SSB", "create")
    assert (listed["object_type"], listed["object_id"]) == ("case", response.json()["id"])
    assert listed["changes"]["title"] == [None, "Shape"]
    detail = client_for(people.aud_a).get(f"{AUDIT}{event.seq}/")
    assert detail.status_code == 200 and detail.json()["hash"] == event.hash


def test_one_agencys_events_never_reach_another_agencys_auditor(world, people, client_for):
    inv_a, inv_b = client_for(people.inv), client_for(people.inv_b)
    case_a = inv_a.post(CASES, {"title": "A's secret case"}, format="json").json()["id"]
    inv_a.post(f"{CASES}{case_a}/notes/", {"body": "A's note"}, format="json")
    inv_a.get(f"{CASES}{case_a}/")
    inv_b.post(CASES, {"title": "B's case"}, format="json")
    APIClient().post("/api/v1/auth/tokens/", {"username": "inv-a1", "password": "wrong"}, format="json")

    aud_b = client_for(people.aud_b)
    listed = results(aud_b.get(AUDIT, {"page_size": 500}))
    assert listed, "B's auditor sees B's own events"
    assert {e["agency"] for e in listed} == {"ASB"}
    assert len(listed) == AuditEvent.objects.filter(chain=str(world.b.pk)).count()
    assert results(aud_b.get(AUDIT, {"object_id": case_a})) == []
    assert results(aud_b.get(AUDIT, {"actor": "inv-a1"})) == []
    assert results(aud_b.get(AUDIT, {"case": case_a})) == []
    # Looking an event up by its number finds B's event of that number, never A's.
    for event in chain_events(world.a):
        response = aud_b.get(f"{AUDIT}{event.seq}/")
        assert response.status_code in (200, 404)
        if response.status_code == 200:
            assert response.json()["agency"] == "ASB" and response.json()["hash"] != event.hash
    verify_b = aud_b.get(VERIFY).json()
    assert verify_b["checked"] == AuditEvent.objects.filter(chain=str(world.b.pk)).count()

    # And A's auditor sees A's events only.
    listed_a = results(client_for(people.aud_a).get(AUDIT, {"page_size": 500}))
    assert {e["agency"] for e in listed_a} == {"SSB"}
    assert len(listed_a) == AuditEvent.objects.filter(chain=str(world.a.pk)).count()


def test_audit_filters(world, people, client_for):
    inv, sup = client_for(people.inv), client_for(people.sup)
    case_1 = inv.post(CASES, {"title": "First"}, format="json").json()["id"]
    case_2 = inv.post(CASES, {"title": "Second"}, format="json").json()["id"]
    note = inv.post(f"{CASES}{case_1}/notes/", {"body": "n"}, format="json").json()["id"]
    inv.patch(f"{CASES}{case_1}/", {"title": "First, renamed"}, format="json")
    sup.get(f"{CASES}{case_2}/")
    sup.post(f"{CASES}{case_2}/shares/", {"agency": "ASB", "access": "read"}, format="json")
    every = chain_events(world.a)
    assert len(every) == 6

    aud = client_for(people.aud_a)

    def seqs(**params) -> list[int]:
        return sorted(e["seq"] for e in results(aud.get(AUDIT, {"page_size": 500, **params})))

    assert seqs() == [e.seq for e in every]
    assert seqs(actor="sup-a") == [e.seq for e in every if e.actor == "sup-a"] != []
    assert seqs(actor="inv-a1") == [e.seq for e in every if e.actor == "inv-a1"] != []
    assert seqs(actor="nobody") == []
    assert seqs(action="view") == [e.seq for e in every if e.action == "view"] != []
    assert seqs(action=["create", "share"]) == [e.seq for e in every if e.action in ("create", "share")]
    assert seqs(object_type="note") == [e.seq for e in every if e.object_type == "note"] != []
    assert seqs(object_id=case_1) == [e.seq for e in every if e.object_id == case_1]
    assert len(seqs(object_id=case_1)) == 2
    assert seqs(object_id=note) == [e.seq for e in every if e.object_id == note]
    assert seqs(object_type="case", action="update") == [e.seq for e in every if e.action == "update"]

    middle = every[3]
    after = seqs(after=middle.at.isoformat())
    before = seqs(before=middle.at.isoformat())
    assert middle.seq in after and middle.seq not in before
    assert sorted(after + before) == [e.seq for e in every]
    assert after == [e.seq for e in every if e.at >= middle.at]
    assert seqs(after=every[-1].at.isoformat(), before=every[-1].at.isoformat()) == []

    ordered = [e["seq"] for e in results(aud.get(AUDIT))]
    assert ordered == sorted(ordered, reverse=True)  # newest first


@pytest.mark.parametrize("params", [{"after": "yesterday"}, {"before": "2024-13-45T00:00:00Z"},
                                    {"action": "bogus"}, {"case": "not-a-uuid"}, {"object_id": "\x00"},
                                    {"page": "abc"}])
def test_bad_audit_filters_are_4xx_json(world, people, client_for, params):
    response = client_for(people.aud_a).get(AUDIT, params)
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/json")


def test_verify_reports_an_intact_chain(world, people, client_for):
    inv = client_for(people.inv)
    for i in range(3):
        case_id = inv.post(CASES, {"title": f"Case {i}"}, format="json").json()["id"]
        inv.post(f"{CASES}{case_id}/notes/", {"body": "n"}, format="json")
    count = AuditEvent.objects.filter(chain=str(world.a.pk)).count()
    assert count == 6
    response = client_for(people.aud_a).get(VERIFY)
    assert response.status_code == 200
    # No checkpoint key in the test settings: the walk starts at seq 1 and says it is unsigned.
    assert response.json() == {"ok": True, "checked": count, "first_bad_seq": None, "reason": "", "from_seq": 1,
                               "head_seq": count, "signed": False, "complete": True, "checkpoint": None}
    # Verifying writes nothing.
    assert AuditEvent.objects.filter(chain=str(world.a.pk)).count() == count
    # An agency with no events yet is intact too.
    body = client_for(people.aud_b).get(VERIFY).json()
    assert (body["ok"], body["checked"], body["first_bad_seq"]) == (True, 0, None)


def test_verify_audit_command_on_intact_chains(world, people, client_for):
    client_for(people.inv).post(CASES, {"title": "Intact"}, format="json")
    APIClient().post("/api/v1/auth/tokens/", {"username": "ghost", "password": "x"}, format="json")
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "SSB: intact, 1 events" in out.getvalue()
    assert "global: intact" in out.getvalue()
    out = io.StringIO()
    call_command("verify_audit", "--agency", "SSB", stdout=out)
    assert "SSB: intact" in out.getvalue()
    with pytest.raises(CommandError, match="NOPE"):
        call_command("verify_audit", "--agency", "NOPE", stdout=io.StringIO())


@pytest.mark.parametrize("address", ["", "2001:DB8:0:0:0:0:0:1", "::FFFF:10.0.0.1", "10.1.2.3", "not-an-address"])
def test_the_chain_holds_whatever_the_client_address_looks_like(world, people, client_for, address):
    """The hash covers the address as stored: an unusual spelling of it must not break the chain."""
    response = client_for(people.inv).post(CASES, {"title": "From afar"}, format="json", REMOTE_ADDR=address)
    assert response.status_code == 201, response.content
    assert verify_chain(str(world.a.pk)).ok


# --- the database refuses changes; tampering is found --------------------------------------------


@pytest.fixture
def trail(world, people, client_for):
    """Ten events on agency A's chain, and one on B's."""
    inv = client_for(people.inv)
    for i in range(5):
        case_id = inv.post(CASES, {"title": f"Case {i}"}, format="json").json()["id"]
        inv.post(f"{CASES}{case_id}/notes/", {"body": f"note {i}"}, format="json")
    client_for(people.inv_b).post(CASES, {"title": "B"}, format="json")
    assert last_seq(world.a) == 10 and last_seq(world.b) == 1
    return chain_events(world.a)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET changes = '{}'::jsonb WHERE chain = %s AND seq = 3",
        "UPDATE audit_auditevent SET actor = 'someone else' WHERE chain = %s",
        "DELETE FROM audit_auditevent WHERE chain = %s AND seq = 3",
        "DELETE FROM audit_auditevent WHERE chain = %s",
    ],
    ids=["update-one", "update-all", "delete-one", "delete-all"],
)
def test_the_database_refuses_update_and_delete(world, trail, sql):
    with (pytest.raises(DatabaseError, match="append-only"), transaction.atomic(),
          connection.cursor() as cursor):
        cursor.execute(sql, [str(world.a.pk)])
    assert chain_events(world.a) == trail
    assert [e.changes for e in chain_events(world.a)] == [e.changes for e in trail]


def test_the_orm_cannot_change_or_delete_events_either(world, trail):
    event = trail[2]
    event.changes = {"forged": [None, True]}
    with pytest.raises(DatabaseError), transaction.atomic():
        event.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(chain=str(world.a.pk)).update(actor="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert verify_chain(str(world.a.pk)).ok


def tamper(sql: str, params: list) -> None:
    """What a database superuser could do: switch the trigger off, edit, switch it back on."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update_delete")
        cursor.execute(sql, params)
        assert cursor.rowcount >= 1
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_update_delete")


def assert_broken_at(agency, seq: int, auditor_client) -> None:
    with pytest.raises(CommandError, match=rf"\bseq {seq}\b"):
        call_command("verify_audit", "--agency", agency.code, stdout=io.StringIO())
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit", stdout=out)
    assert f"{agency.code}: BROKEN at seq {seq}" in out.getvalue()
    response = auditor_client.get(VERIFY)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["first_bad_seq"] == seq


@pytest.mark.parametrize("k", [1, 4, 10])
def test_changed_changes_are_found(world, people, client_for, trail, k):
    forged = {**trail[k - 1].changes, "body": [None, "forged"]}
    tamper("UPDATE audit_auditevent SET changes = %s::jsonb WHERE chain = %s AND seq = %s",
           [json.dumps(forged), str(world.a.pk), k])
    assert_broken_at(world.a, k, client_for(people.aud_a))
    # The other agency's chain is untouched and still verifies.
    call_command("verify_audit", "--agency", "ASB", stdout=io.StringIO())
    assert client_for(people.aud_b).get(VERIFY).json()["ok"] is True


@pytest.mark.parametrize(
    "column, value",
    [("actor", "someone-else"), ("action", "view"), ("object_id", "00000000-0000-0000-0000-000000000000"),
     ("at", "2001-01-01T00:00:00Z"), ("request_id", "forged"), ("ip", "10.9.9.9")],
)
def test_any_changed_column_is_found(world, people, client_for, trail, column, value):
    tamper(f"UPDATE audit_auditevent SET {column} = %s WHERE chain = %s AND seq = 6",
           [value, str(world.a.pk)])
    assert_broken_at(world.a, 6, client_for(people.aud_a))


def test_a_rehashed_event_breaks_the_next_link(world, people, client_for, trail):
    """A forger who also recomputes the event's own hash is caught by the next event's prev_hash."""
    from audit.services import compute_hash

    event = trail[4]
    event.changes = {"body": [None, "forged"]}
    new_hash = compute_hash(event.prev_hash, event)
    tamper("UPDATE audit_auditevent SET changes = %s::jsonb, hash = %s WHERE chain = %s AND seq = 5",
           [json.dumps(event.changes), new_hash, str(world.a.pk)])
    assert_broken_at(world.a, 6, client_for(people.aud_a))


@pytest.mark.parametrize("k", [1, 5])
def test_a_deleted_event_is_found(world, people, client_for, trail, k):
    tamper("DELETE FROM audit_auditevent WHERE chain = %s AND seq = %s", [str(world.a.pk), k])
    assert_broken_at(world.a, k, client_for(people.aud_a))


def test_a_deleted_last_event_is_found(world, people, client_for, trail):
    tamper("DELETE FROM audit_auditevent WHERE chain = %s AND seq = 10", [str(world.a.pk)])
    assert_broken_at(world.a, 10, client_for(people.aud_a))


def test_writes_after_tampering_do_not_hide_it(world, people, client_for, trail):
    tamper("UPDATE audit_auditevent SET changes = '{}'::jsonb WHERE chain = %s AND seq = 2", [str(world.a.pk)])
    client_for(people.inv).post(CASES, {"title": "Later"}, format="json")
    assert_broken_at(world.a, 2, client_for(people.aud_a))


# --- concurrent writers --------------------------------------------------------------------------


WRITERS = 50


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain(world):
    inv = factories.user(world.a, "investigator", world.a1, username="inv-a1")
    case = factories.case(world.a, world.a1, lead=inv)  # no event yet: the writers also race for the chain head
    keys = [factories.token(inv) for _ in range(WRITERS)]
    barrier = threading.Barrier(WRITERS, timeout=60)
    statuses: list[int | str] = [0] * WRITERS

    def write(i: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {keys[i]}")
            barrier.wait()
            if i % 2:
                response = client.post(CASES, {"title": f"Concurrent {i}"}, format="json")
            else:
                response = client.post(f"{CASES}{case.pk}/notes/", {"body": f"note {i}"}, format="json")
            statuses[i] = response.status_code
        except Exception as exc:
            statuses[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert statuses == [201] * WRITERS, statuses

    events = chain_events(world.a)
    assert [e.seq for e in events] == list(range(1, WRITERS + 1))
    assert [e.prev_hash for e in events] == ["", *[e.hash for e in events[:-1]]]  # one line, no fork
    assert len({e.hash for e in events}) == WRITERS
    head = ChainHead.objects.get(chain=str(world.a.pk))
    assert (head.last_seq, head.last_hash) == (WRITERS, events[-1].hash)
    result = verify_chain(str(world.a.pk))
    assert (result.ok, result.checked, result.first_bad_seq) == (True, WRITERS, None)
    call_command("verify_audit", "--agency", "SSB", stdout=io.StringIO())

    assert Case.objects.filter(agency=world.a).count() == WRITERS // 2 + 1
    assert Note.objects.filter(case=case).count() == WRITERS // 2
    references = list(Case.objects.values_list("reference", flat=True))
    assert len(set(references)) == len(references)
    assert sorted(e.object_type for e in events) == sorted(["case"] * (WRITERS // 2) + ["note"] * (WRITERS // 2))


@pytest.mark.django_db
def test_an_event_reads_its_chains_head_once_and_locked(world):
    """Once the chain has a head, appending reads it in one statement, FOR UPDATE (not a read, then a locked one)."""
    record(action="login", agency=world.a)  # the chain's first event makes its head
    statements: list[str] = []

    def capture(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        record(action="login", agency=world.a)
    head_reads = [sql for sql in statements if sql.startswith("SELECT") and '"audit_chainhead"' in sql]
    assert len(head_reads) == 1, head_reads
    assert head_reads[0].endswith("FOR UPDATE")
    assert last_seq(world.a) == 2
    assert verify_chain(str(world.a.pk)).ok


@pytest.mark.django_db
def test_events_recorded_many_at_a_time_chain_as_single_ones_do(world):
    chain = str(world.a.pk)
    record(action="login", agency=world.a)
    changes = {"name": [None, 'Zhang "Wei" 张伟\n'], "share": [None, 1.5], "tags": [[], ["a"]], "n": [1, None]}
    actor = factories.user(world.a, "investigator", world.a1, username="bulk-writer")
    case = factories.case(world.a, world.a1)
    token = context.begin(context.RequestContext(request_id="job-1", ip="2001:db8::1", user=actor))
    try:
        prepared = prepare_events([
            {"action": "create", "object_type": "entity", "object_id": "1", "changes": changes},
            {"action": "update", "object_type": "case", "object_id": str(case.pk), "case_id": case.pk,
             "changes": {"title": ["a", "b"]}},
            {"action": "create", "object_type": "link", "object_id": "x", "changes": {}},
        ], agency=world.a, actor=actor)
    finally:
        context.end(token)
    record(action="login", agency=world.a)  # another writer between the preparing and the recording
    assert record_many(prepared) == 3
    record(action="login", agency=world.a)
    events = list(AuditEvent.objects.filter(chain=chain).order_by("seq"))
    assert [e.action for e in events[-6:]] == ["login", "login", "create", "update", "create", "login"]
    update = events[-3]
    assert (update.actor, update.ip, update.request_id, update.case_id) == ("bulk-writer", "2001:db8::1", "job-1",
                                                                          case.pk)
    assert update.changes == {"title": ["a", "b"]} and events[-4].changes == changes
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(compute_hash(e.prev_hash, e) == e.hash for e in events)  # as read back from the database
    assert verify_chain(chain).ok


@pytest.mark.django_db
def test_events_written_before_changes_were_pairs_still_verify(world):
    """Events the trail holds from before `changes` were always [old, new] (plain values, hashed as the
    reference canonical JSON of their payload) verify beside new ones."""
    import hashlib

    from audit.services import _canonical, _payload

    chain = str(world.a.pk)
    record(action="login", agency=world.a)
    head = ChainHead.objects.get(chain=chain)
    old = AuditEvent(chain=chain, seq=head.last_seq + 1, at=timezone_now(), agency_code=world.a.code, actor="old",
                     action="token_issued", object_type="apitoken", object_id="1", request_id="r",
                     changes={"prefix": "abcd1234", "n": 3, "fields": ["role"]}, prev_hash=head.last_hash)
    old.hash = hashlib.sha256((head.last_hash + _canonical(_payload(old))).encode()).hexdigest()
    old.save(force_insert=True)
    ChainHead.objects.filter(chain=chain).update(last_seq=old.seq, last_hash=old.hash)
    record(action="login", agency=world.a, changes={"n": [None, 1]})
    result = verify_chain(chain)
    assert (result.ok, result.checked) == (True, 3)
