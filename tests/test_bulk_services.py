"""The bulk services an import writes through (entities.bulk, shipments.bulk): the same records, versions and
audit events as the API writes; and the one writer of the audit trail's text (single and batched events alike,
`changes` always {field: [old, new]})."""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from audit.services import _canonical, _payload, compute_hash, prepare_events, record, record_many, verify_chain
from core import context
from entities.models import Entity, Link
from imports.models import ImportJob
from imports.services import run_job
from shipments.models import Shipment

from . import factories

SHIPMENTS = "/api/v1/shipments/"
PERSONS = "/api/v1/persons/"
TOKENS = "/api/v1/auth/tokens/"


def job_for(agency, content: bytes, kind: str, user=None, source: str = "bulk", mode: str = "partial") -> ImportJob:
    job = ImportJob(agency=agency, kind=kind, mode=mode, source=source, created_by=user)
    job.file.save("file.csv", ContentFile(content), save=False)
    job.save()
    return job


def create_event(object_id) -> AuditEvent:
    return AuditEvent.objects.get(action="create", object_id=str(object_id))


# --- one shape of event whichever path wrote the record ---------------------------------------------------


@pytest.mark.django_db
def test_an_imported_shipments_create_event_has_the_api_events_shape(api, investigator, world):
    body = {"reference": "BL-API", "hs_code": "8110", "origin_country": "CN", "destination_country": "DE",
            "quantity_kg": "12.500"}
    created = api.post(SHIPMENTS, body, format="json")
    assert created.status_code == 201, created.content
    csv = b"source_id,reference,hs_code,origin_country,destination_country,quantity_kg\ns1,BL-FILE,8110,CN,DE,12.5\n"
    job = run_job(job_for(world.a, csv, "shipments", user=investigator).pk)
    assert job.created == 1, job.error
    imported = Shipment.objects.get(source_id="s1")
    from_api, from_file = create_event(created.json()["id"]), create_event(imported.pk)
    assert from_file.object_type == from_api.object_type == "shipment"
    assert set(from_file.changes) == set(from_api.changes)
    assert from_file.changes["cases"] == from_api.changes["cases"] == [None, []]
    assert from_file.changes["legs"] == from_api.changes["legs"] == [None, []]
    assert from_file.changes["quantity_kg"] == from_api.changes["quantity_kg"] == [None, "12.500"]
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in from_file.changes.values())
    assert verify_chain(str(world.a.pk)).ok


@pytest.mark.django_db
def test_an_imported_persons_create_event_has_the_api_events_shape(api, investigator, world):
    created = api.post(PERSONS, {"name": "Zhang Wei", "nationalities": ["CN"]}, format="json")
    assert created.status_code == 201, created.content
    job = run_job(job_for(world.a, b"source_id,name,nationalities\np1,Li Na,CN\n", "persons", user=investigator).pk)
    assert job.created == 1, job.error
    from_api = create_event(created.json()["id"])
    from_file = create_event(Entity.objects.get(source_id="p1").pk)
    assert from_file.object_type == from_api.object_type == "person"
    assert set(from_file.changes) == set(from_api.changes)
    assert from_file.changes["search_text"][1] and from_file.changes["name_keys"][1]  # derived, by the model


# --- the services themselves -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_entities_upsert_derives_bumps_versions_audits_each_record_and_signals_once(world, investigator,
                                                                                    monkeypatch):
    from core import outbox
    from entities.bulk import entities_upsert

    signalled: list[tuple[str, list]] = []
    monkeypatch.setattr(outbox, "records_changed", lambda label, ids: signalled.append((label, list(ids))))
    rows = [{"source": "reg", "source_id": "o1", "name": "Antimony Trading Co., Ltd.", "type": "organization",
             "registration_number": "HK-123"},
            {"source": "reg", "source_id": "p1", "name": "Zhang Wei"}]
    first = entities_upsert(agency=world.a, actor=investigator, rows=[dict(r) for r in rows], entity_type="person")
    assert first.outcomes == ["created", "created"]
    org, person = Entity.objects.get(source_id="o1"), Entity.objects.get(source_id="p1")
    assert (org.type, org.kind, org.version, person.type) == ("organization", "company", 1, "person")
    assert org.identifier_numbers == ["HK123"] and "antimony" in org.search_text
    assert sorted(signalled) == sorted([("entities.organization", [org.pk]), ("entities.person", [person.pk])])

    signalled.clear()
    again = entities_upsert(agency=world.a, actor=investigator, rows=[
        {"source": "reg", "source_id": "o1", "name": "Antimony Metals Co., Ltd.", "type": "person"},
        {"source": "reg", "source_id": "p1", "name": "Zhang Wei"}])
    assert again.outcomes == ["updated", "unchanged"]
    org.refresh_from_db()
    assert (org.type, org.version, org.name) == ("organization", 2, "Antimony Metals Co., Ltd.")  # type kept
    assert "metals" in org.search_text and "trading" not in org.search_text  # derived again
    assert signalled == [("entities.organization", [org.pk])]
    update = AuditEvent.objects.get(action="update", object_id=str(org.pk))
    assert update.object_type == "organization" and update.actor == investigator.username
    assert update.changes["name"] == ["Antimony Trading Co., Ltd.", "Antimony Metals Co., Ltd."]
    assert update.changes["search_text"][0] != update.changes["search_text"][1]
    assert AuditEvent.objects.filter(action="create", object_id__in=[str(org.pk), str(person.pk)]).count() == 2
    assert verify_chain(str(world.a.pk)).ok


@pytest.mark.django_db
def test_links_and_shipments_upsert_by_their_keys(world, investigator, monkeypatch):
    from core import outbox
    from entities.bulk import links_upsert
    from shipments.bulk import shipments_upsert

    signalled: list[tuple[str, list]] = []
    monkeypatch.setattr(outbox, "records_changed", lambda label, ids: signalled.append((label, list(ids))))
    a, b = factories.person(world.a, "A"), factories.organization(world.a, "B Ltd")
    case = factories.case(world.a, world.a1)
    row = {"provenance_source": "reg", "provenance_id": "l1", "kind": "ownership", "source_id": a.pk,
           "target_id": b.pk, "share_pct": Decimal("51.000"), "case_id": case.pk}
    assert links_upsert(agency=world.a, actor=None, rows=[dict(row)]).outcomes == ["created"]
    link = Link.objects.get(provenance_id="l1")
    event = create_event(link.pk)
    assert event.case_id == case.pk and event.changes["share_pct"] == [None, "51.000"]  # as the API's
    assert links_upsert(agency=world.a, actor=None, rows=[{**row, "share_pct": Decimal("75.500")}]).outcomes == [
        "updated"]
    link.refresh_from_db()
    assert (link.version, link.share_pct) == (2, Decimal("75.500"))

    shipment = {"source": "customs", "source_id": "s1", "reference": "BL-1", "origin_country": "CN",
                "transit_countries": ["VN"], "departed_on": datetime.date(2025, 1, 2)}
    result = shipments_upsert(agency=world.a, actor=investigator,
                              rows=[dict(shipment), {**shipment, "reference": "BL-1b"}])
    assert result.outcomes == ["created", "updated"]  # a key met twice: the later row applies to the new record
    stored = Shipment.objects.get(source_id="s1")
    assert (stored.reference, stored.version) == ("BL-1b", 1)
    assert AuditEvent.objects.filter(object_id=str(stored.pk)).count() == 1
    assert [label for label, _ in signalled] == ["entities.link", "entities.link", "shipments.shipment"]
    assert verify_chain(str(world.a.pk)).ok


@pytest.mark.django_db
def test_a_deferred_upsert_writes_nothing_until_asked(world):
    from entities.bulk import entities_upsert

    result = entities_upsert(agency=world.a, actor=None, entity_type="person",
                             rows=[{"source": "reg", "source_id": "p9", "name": "Later"}], defer=True)
    assert result.outcomes == ["created"] and not Entity.objects.filter(source_id="p9").exists()
    result.prepare()
    result.write()
    assert Entity.objects.get(source_id="p9").version == 1
    assert verify_chain(str(world.a.pk)).ok


# --- one writer of the audit trail's text ------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
_json = st.recursive(st.none() | st.booleans() | st.integers(-(2 ** 53), 2 ** 53) | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=6)
_events = st.fixed_dictionaries({
    "action": st.sampled_from(["create", "update", "archive", "login", "import"]),
    "object_type": st.sampled_from(["person", "organization", "shipment", "link", "case", ""]),
    "object_id": _text,
    "case_id": st.none() | st.uuids(version=4),
    "changes": st.dictionaries(_text, st.tuples(_json, _json).map(list), max_size=5),
})
_where = st.fixed_dictionaries({
    "actor": st.none() | st.builds(SimpleNamespace, pk=st.uuids(version=4), username=_text),
    "request_id": _text,
    "ip": st.sampled_from([None, "127.0.0.1", "2001:db8::1", "::ffff:10.0.0.1"]),
    "at": st.datetimes(timezones=st.just(datetime.UTC)),
    "seq": st.integers(1, 10 ** 12),
    "code": st.text("ABCXYZ", min_size=1, max_size=6),
})


@settings(max_examples=300, deadline=None)
@given(event=_events, where=_where)
def test_single_and_batched_events_have_byte_equal_canonical_text(event, where):
    """prepare_events (how record makes one event and record_many a batch) writes, up to the seq, the text
    that verify_chain hashes from a stored event: the reference canonical JSON, byte for byte."""
    agency = SimpleNamespace(pk=uuid.uuid4(), code=where["code"])
    actor = where["actor"]
    token = context.begin(context.RequestContext(request_id=where["request_id"], ip=where["ip"]))
    try:
        alone = prepare_events([dict(event)], agency=agency, actor=actor, at=where["at"])
        batch = prepare_events([{"action": "login", "object_type": "user", "object_id": "x", "changes": {}},
                                dict(event)], agency=agency, actor=actor, at=where["at"])
    finally:
        context.end(token)
    seq = where["seq"]
    row = alone.rows[0]
    stored = SimpleNamespace(**{**row, "seq": seq, "changes": json.loads(_canonical(event["changes"]))})
    reference = _canonical(_payload(stored))  # the hashed text since the first event of the chain
    assert alone.texts[0] + f"{seq}}}" == batch.texts[1] + f"{seq}}}" == reference
    assert compute_hash("prev", stored) == hashlib.sha256(f"prev{reference}".encode()).hexdigest()


@pytest.mark.django_db
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=_events)
def test_an_event_recorded_alone_or_in_a_batch_is_stored_and_verified_alike(world, event):
    single = record(agency=world.a, **{**event, "changes": dict(event["changes"])})
    record_many(prepare_events([dict(event)], agency=world.a))
    stored = list(AuditEvent.objects.filter(chain=str(world.a.pk)).order_by("-seq")[:2])[::-1]
    assert stored[0].pk == single.pk
    for got in stored:
        assert (got.action, got.object_type, got.object_id, got.case_id) == (
            event["action"], event["object_type"], event["object_id"], event["case_id"])
        assert got.changes == json.loads(_canonical(event["changes"]))
        assert compute_hash(got.prev_hash, got) == got.hash
    assert verify_chain(str(world.a.pk)).ok


@pytest.mark.parametrize("changes", [{"name": "plain"}, {"n": [1]}, {"n": [1, 2, 3]}, ["name", "a", "b"]])
def test_changes_that_are_not_old_new_pairs_are_refused(changes):
    with pytest.raises(ValueError, match="old, new"):
        prepare_events([{"action": "update", "object_type": "x", "object_id": "1", "changes": changes}],
                       agency=None)


# --- `changes` is {field: [old, new]} in every event of a broad scenario ---------------------------------


@pytest.mark.django_db
def test_every_event_of_a_broad_scenario_records_changes_as_old_new_pairs(world, client_for, settings):
    from django.contrib.auth.hashers import make_password
    from django.test import Client

    from accounts.models import ApiToken
    from accounts.services import (
        agency_ensure,
        record_admin_user_change,
        token_issue,
        token_revoke,
        unit_ensure,
        user_ensure,
        user_unlock,
    )

    settings.AUTH_LOCKOUT_THRESHOLD = 2
    agency, _ = agency_ensure(code="XYZ", name="X agency")
    agency_ensure(code="XYZ", name="X agency renamed", contact="desk@example.org")
    unit, _ = unit_ensure(agency=agency, code="U1", name="Unit one")
    unit_ensure(agency=agency, code="U1", name="Unit one renamed")
    admin, _ = user_ensure(username="x-admin", agency=agency, role="agency_admin", password="pw-x-admin-1")
    user, _ = user_ensure(username="x-inv", agency=agency, role="investigator", unit=unit, password="pw-x-inv-1")
    user_ensure(username="x-inv", agency=agency, role="supervisor", unit=unit, clearance="secret",
                password="pw-x-inv-2")
    record_admin_user_change(user=user, actor=admin, created=False, fields=["role", "password"])
    ApiToken.objects.filter(user=user).delete()
    token, _ = token_issue(user=user)
    token_revoke(token=token, actor=admin)
    user.password = make_password("pw-x-inv-2")
    user.save()
    browser = Client()
    for password in ("wrong-1", "wrong-2", "pw-x-inv-2"):  # two failures lock the account
        browser.post(TOKENS, {"username": "x-inv", "password": password}, content_type="application/json")
    browser.post(TOKENS, {"username": "nobody", "password": "x"}, content_type="application/json")
    user.refresh_from_db()
    user_unlock(user=user, actor=admin)
    assert browser.post(TOKENS, {"username": "x-inv", "password": "pw-x-inv-2"},
                        content_type="application/json").status_code == 201

    investigator = factories.user(world.a, "investigator", world.a1, username="inv-broad")
    api = client_for(investigator)
    person = api.post(PERSONS, {"name": "Zhang Wei"}, format="json").json()
    api.patch(f"{PERSONS}{person['id']}/", {"name": "Zhang Wei Jr"}, format="json")
    api.post(SHIPMENTS, {"reference": "BL-9", "origin_country": "CN"}, format="json")
    run_job(job_for(world.a, b"source_id,name\np1,Li Na\np2,\n", "persons", user=investigator).pk)
    run_job(job_for(world.a, b"source_id,name\np1,Li Na Jr\n", "persons", user=investigator).pk)
    shipments = (b"source_id,reference,origin_country,consignee,consignee_country\n"
                 b"s1,BL-1,CN,Antimony Trading Co.,HK\n")
    run_job(job_for(world.a, shipments, "shipments", user=investigator).pk)
    run_job(job_for(world.a, b"source_id,reference\n", "shipments", user=investigator, mode="atomic").pk)
    run_job(job_for(world.a, b"source_id,name\n", "nonsense", user=investigator).pk)

    events = list(AuditEvent.objects.all())
    actions = {e.action for e in events}
    assert {"create", "update", "login", "login_failed", "token_issued", "token_revoked", "import"} <= actions
    bad = [(e.action, e.object_type, e.changes) for e in events
           if not isinstance(e.changes, dict)
           or not all(isinstance(pair, list) and len(pair) == 2 for pair in e.changes.values())]
    assert bad == []
    for chain in {e.chain for e in events}:
        assert verify_chain(chain).ok


@pytest.mark.django_db
def test_an_import_row_cannot_overwrite_the_transit_countries_a_shipments_legs_give(world, investigator):
    legs = ({"from_country": "CN", "to_country": "VN"}, {"from_country": "VN", "to_country": "DE"})
    shipment = factories.shipment(world.a, legs=legs, origin_country="CN", destination_country="DE",
                                  source="customs", source_id="s1")
    assert shipment.transit_countries == ["VN"]
    header = b"source_id,reference,origin_country,destination_country,transit_countries\n"
    job = run_job(job_for(world.a, header + f"s1,{shipment.reference},CN,DE,TH\n".encode(), "shipments",
                          user=investigator, source="customs").pk)
    assert (job.status, job.created, job.updated, job.failed_rows) == ("succeeded", 0, 0, 1)
    assert [(e.row, e.field) for e in job.errors.all()] == [(1, "transit_countries")]
    shipment.refresh_from_db()
    assert (shipment.transit_countries, shipment.version) == (["VN"], 1)
    # A moved destination derives them again from the legs (CN→VN→DE ending in VN: DE is now between).
    job = run_job(job_for(world.a, header + f"s1,{shipment.reference},CN,VN,\n".encode(), "shipments",
                          user=investigator, source="customs").pk)
    assert (job.updated, job.failed_rows) == (1, 0), list(job.errors.values_list("field", "message"))
    shipment.refresh_from_db()
    assert (shipment.destination_country, shipment.transit_countries, shipment.version) == ("VN", ["DE"], 2)
    update = AuditEvent.objects.get(action="update", object_id=str(shipment.pk))
    assert update.changes["transit_countries"] == [["VN"], ["DE"]]
