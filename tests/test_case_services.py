"""Cases, parties, notes, shares and prosecutions have one write path (cases.services) and each rule once
(cases.rules): the API, the admin and plain Python get the same rows, the same audit events and the same
messages."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from cases import services
from cases.models import Case, CaseShare, Note, Prosecution
from core.rules import RuleViolation, StateConflict

from . import factories
from .admin_forms import case_form as _case_form
from .admin_forms import prosecution_form as _prosecution_form

CASES = "/api/v1/cases/"
PROSECUTIONS = "/api/v1/prosecutions/"


@pytest.fixture
def staff(client_for):
    return factories.admin_client


def _form_messages(response) -> list[str]:
    """Every error message of the admin page's main form and its inline forms, flattened."""
    assert response.status_code == 200, response.status_code
    messages = [m for errors in response.context["adminform"].form.errors.values() for m in errors]
    for inline in response.context["inline_admin_formsets"]:
        messages += [m for errors in inline.formset.errors for field in errors.values() for m in field]
        messages += list(inline.formset.non_form_errors())
    return messages


def _api_messages(body) -> list[str]:
    if isinstance(body, str):
        return [body]
    if isinstance(body, list):
        return [m for item in body for m in _api_messages(item)]
    return [m for value in body.values() for m in _api_messages(value)]


def _event_shape(event: AuditEvent) -> tuple:
    return (event.action, event.object_type, event.agency_code, event.actor, str(event.case_id),
            sorted(event.changes))


# --- case creation defaults ------------------------------------------------------------------


def test_a_case_created_in_the_admin_gets_the_defaults_the_api_gives(world, client_for, staff):
    user = factories.user(world.a, "investigator", world.a1)
    through_api = client_for(user).post(CASES, {"title": "By API"}, format="json")
    assert through_api.status_code == 201, through_api.json()
    response = staff(user).post("/admin/cases/case/add/", _case_form(title="By admin"))
    assert response.status_code == 302, response.content.decode()[:3000]
    api_case, admin_case = Case.objects.get(title="By API"), Case.objects.get(title="By admin")
    fields = ("agency_id", "unit_id", "lead_id", "opened_on", "created_by_id", "status", "closed_on", "version")
    assert [getattr(admin_case, f) for f in fields] == [getattr(api_case, f) for f in fields]
    assert (admin_case.unit, admin_case.lead, admin_case.opened_on) == (world.a1, user, timezone.localdate())
    events = [AuditEvent.objects.get(object_id=str(c.pk), action="create") for c in (api_case, admin_case)]
    assert _event_shape(events[0]) [:3] == _event_shape(events[1])[:3]
    assert sorted(events[0].changes) == sorted(events[1].changes)


def test_a_case_created_from_plain_python_matches_the_api(world, client_for):
    user = factories.user(world.a, "investigator", world.a1)
    body = {"title": "Grey ore", "priority": "high", "commodities": ["antimony"], "tags": ["ring"]}
    response = client_for(user).post(CASES, body, format="json")
    assert response.status_code == 201, response.json()
    from cases.models import Commodity

    case = services.case_create(agency=world.a, actor=user,
                                data={**body, "commodities": list(Commodity.objects.filter(code="antimony"))})
    api_case = Case.objects.get(pk=response.json()["id"])
    fields = ("agency_id", "unit_id", "lead_id", "opened_on", "created_by_id", "status", "priority", "title",
              "tags", "version", "classification")
    assert [getattr(case, f) for f in fields] == [getattr(api_case, f) for f in fields]
    assert list(case.commodities.all()) == list(api_case.commodities.all())
    assert case.reference != api_case.reference
    api_event = AuditEvent.objects.get(object_id=str(api_case.pk), action="create")
    event = AuditEvent.objects.get(object_id=str(case.pk), action="create")
    assert _event_shape(event)[:4] == _event_shape(api_event)[:4]
    assert {k: v for k, v in event.changes.items() if k != "reference"} == {
        k: v for k, v in api_event.changes.items() if k != "reference"}


def test_a_case_update_that_changes_nothing_writes_nothing(world):
    user = factories.user(world.a, "investigator", world.a1)
    case = services.case_create(agency=world.a, actor=user, data={"title": "Same"})
    count = AuditEvent.objects.count()
    again = services.case_update(case=case, actor=user, data={"title": "Same", "status": "open", "members": []})
    assert again.version == 1 and AuditEvent.objects.count() == count
    moved = services.case_update(case=case, actor=user, data={"status": "investigating", "title": "Moved"})
    assert moved.version == 2
    event = AuditEvent.objects.filter(object_id=str(case.pk)).latest("seq")
    assert event.action == "transition"
    assert event.changes["status"] == ["open", "investigating"] and event.changes["title"] == ["Same", "Moved"]


# --- the same message through every door -----------------------------------------------------


def test_a_status_move_out_of_order_reads_the_same(world, client_for, staff):
    user = factories.user(world.a, "supervisor", world.a1)
    case = factories.case(world.a, world.a1, status="open")
    api = client_for(user).patch(f"{CASES}{case.pk}/", {"status": "referred"}, format="json")
    assert api.status_code == 409
    admin = _form_messages(staff(user).post(f"/admin/cases/case/{case.pk}/change/",
                                            _case_form(case, status="referred")))
    with pytest.raises(StateConflict) as python:
        services.case_update(case=case, actor=user, data={"status": "referred"})
    assert api.json()["detail"] == "A case cannot move from open to referred."
    assert admin == [api.json()["detail"]] == [str(python.value)]


def test_a_status_move_the_role_may_not_make_reads_the_same(world, client_for, staff):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, status="referred")
    api = client_for(user).patch(f"{CASES}{case.pk}/", {"status": "closed"}, format="json")
    assert api.status_code == 403
    admin = _form_messages(staff(user).post(f"/admin/cases/case/{case.pk}/change/",
                                            _case_form(case, status="closed")))
    assert admin == [api.json()["detail"]] == ["Your role may not move a case to closed."]
    case.refresh_from_db()
    assert case.status == "referred"


def test_a_new_case_not_open_reads_the_same(world, client_for, staff):
    user = factories.user(world.a, "investigator", world.a1)
    api = client_for(user).post(CASES, {"title": "x", "status": "closed"}, format="json")
    admin = _form_messages(staff(user).post("/admin/cases/case/add/", _case_form(title="x", status="closed")))
    assert api.status_code == 400 and api.json() == {"status": ["A new case starts as open."]}
    assert admin == api.json()["status"]
    assert not Case.objects.exists()


def test_a_classification_above_ones_clearance_reads_the_same(world, client_for, staff):
    user = factories.user(world.a, "investigator", world.a1, clearance="restricted")
    api = client_for(user).post(CASES, {"title": "x", "classification": "secret"}, format="json")
    admin = _form_messages(staff(user).post("/admin/cases/case/add/",
                                            _case_form(title="x", classification="secret")))
    assert api.status_code == 400 and "classification" in api.json()
    assert admin == api.json()["classification"]
    assert not Case.objects.exists()


def test_a_share_with_the_owning_agency_or_a_foreign_unit_reads_the_same(world, client_for, staff):
    user = factories.user(world.a, "supervisor", world.a1)
    case = factories.case(world.a, world.a1)
    api, admin = client_for(user), staff(user)
    for share, field in (({"agency": world.a, "unit": None}, "agency"),
                         ({"agency": world.b, "unit": world.a1}, "unit")):
        body = {"agency": share["agency"].code, "access": "read"}
        if share["unit"] is not None:
            body["unit"] = share["unit"].code
        through_api = api.post(f"{CASES}{case.pk}/shares/", body, format="json")
        assert through_api.status_code == 400 and field in through_api.json(), through_api.json()
        form = {**_case_form(case), "shares-TOTAL_FORMS": "1", "shares-0-agency": str(share["agency"].pk),
                "shares-0-unit": str(share["unit"].pk) if share["unit"] else "", "shares-0-access": "read"}
        through_admin = _form_messages(admin.post(f"/admin/cases/case/{case.pk}/change/", form))
        assert through_admin == through_api.json()[field]
    assert not CaseShare.objects.exists()


def test_prosecution_verdict_and_sentence_rules_read_the_same(world, client_for, staff):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, lead=user)
    defendant = factories.person(world.a, "Zhang Wei")
    prosecution = factories.prosecution(case, defendant, stage="trial", filed_on=datetime.date(2026, 5, 2))
    api, admin = client_for(user), staff(user)
    url = f"/admin/cases/prosecution/{prosecution.pk}/change/"
    cases = [
        ({"verdict_on": "2026-06-01"}, {"verdict_on": "2026-06-01"}),
        ({"verdict": "convicted", "verdict_on": "2026-05-01"}, {"verdict": "convicted", "verdict_on": "2026-05-01"}),
        ({"verdict": "acquitted", "sentence": {"custody_months": 12}},
         {"verdict": "acquitted", "custody_months": "12"}),
        ({"verdict": "convicted", "sentence": {"fine_amount": "500"}}, {"verdict": "convicted", "fine_amount": "500"}),
    ]
    for api_body, form in cases:
        through_api = api.patch(f"{PROSECUTIONS}{prosecution.pk}/", api_body, format="json")
        assert through_api.status_code == 400, through_api.json()
        through_admin = _form_messages(admin.post(url, _prosecution_form(prosecution, **form)))
        assert through_admin == _api_messages(through_api.json()), api_body
    prosecution.refresh_from_db()
    assert prosecution.version == 1


def test_a_prosecution_stage_moved_back_reads_the_same(world, client_for, staff):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, lead=user)
    prosecution = factories.prosecution(case, factories.person(world.a), stage="trial")
    api = client_for(user).patch(f"{PROSECUTIONS}{prosecution.pk}/", {"stage": "indicted"}, format="json")
    assert api.status_code == 409
    admin = _form_messages(staff(user).post(f"/admin/cases/prosecution/{prosecution.pk}/change/",
                                            _prosecution_form(prosecution, stage="indicted")))
    assert admin == [api.json()["detail"]]
    assert api.json()["detail"] == "A prosecution cannot move from trial to indicted: stages only move forward."


# --- inlines go through the services ---------------------------------------------------------


def test_admin_inlines_write_through_the_services(world, staff):
    user = factories.user(world.a, "supervisor", world.a1)
    case = factories.case(world.a, world.a1)
    person = factories.person(world.a, "Li Na")
    form = {**_case_form(case),
            "parties-TOTAL_FORMS": "1", "parties-0-entity": str(person.pk), "parties-0-role": "courier",
            "parties-0-custody_status": "arrested", "parties-0-notes": "",
            "notes-TOTAL_FORMS": "1", "notes-0-body": "Seen at the border",
            "shares-TOTAL_FORMS": "1", "shares-0-agency": str(world.b.pk), "shares-0-unit": "",
            "shares-0-access": "read"}
    response = staff(user).post(f"/admin/cases/case/{case.pk}/change/", form)
    assert response.status_code == 302, _form_messages(response)
    note = Note.objects.get(case=case)
    share = CaseShare.objects.get(case=case)
    assert (note.author, share.shared_by) == (user, user)
    actions = dict(AuditEvent.objects.filter(case_id=case.pk).exclude(object_type="case")
                   .values_list("object_type", "action"))
    assert actions == {"caseparty": "create", "note": "create", "caseshare": "share"}
    case.refresh_from_db()
    assert case.version == 1  # the case itself did not change


def test_prosecution_service_from_plain_python_audits_like_the_api(world, client_for):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, lead=user)
    defendant = factories.person(world.a)
    body = {"case": str(case.pk), "defendant": {"type": "person", "id": str(defendant.pk)}, "court": "C",
            "charges": [{"statute": "ECL 34", "description": ""}]}
    response = client_for(user).post(PROSECUTIONS, body, format="json")
    assert response.status_code == 201, response.json()
    prosecution = services.prosecution_create(case=case, actor=user, data={
        "defendant": defendant, "court": "C", "charges": [{"statute": "ECL 34", "description": ""}]})
    api_event = AuditEvent.objects.get(object_id=response.json()["id"], action="create")
    event = AuditEvent.objects.get(object_id=str(prosecution.pk), action="create")
    assert _event_shape(event) == _event_shape(api_event)
    assert event.changes == api_event.changes
    with pytest.raises(RuleViolation) as exc:
        services.prosecution_update(prosecution=prosecution, actor=user, data={"verdict_on": datetime.date(2026, 1, 1)})
    assert exc.value.errors == {"verdict_on": ["A verdict date needs a verdict."]}
    assert Prosecution.objects.get(pk=prosecution.pk).version == 1


@pytest.mark.parametrize("kind", ["party", "note", "share"])
def test_case_records_from_plain_python_match_the_api(world, client_for, kind):
    user = factories.user(world.a, "supervisor", world.a1)
    case = factories.case(world.a, world.a1, lead=user)
    person = factories.person(world.a, "Li Na")
    writes: dict[str, tuple[dict[str, Any], dict[str, Any], Any]] = {
        "party": ({"entity": {"type": "person", "id": str(person.pk)}, "role": "courier",
                   "custody_status": "arrested"},
                  {"entity": person, "role": "courier", "custody_status": "arrested"}, services.party_add),
        "note": ({"body": "Seen at the border"}, {"body": "Seen at the border"}, services.note_create),
        "share": ({"agency": "ASB", "unit": "ports", "access": "write"},
                  {"agency": world.b, "unit": world.b1, "access": "write"}, services.share_create),
    }
    api_body, data, write = writes[kind]
    path = {"party": "parties", "note": "notes", "share": "shares"}[kind]
    response = client_for(user).post(f"{CASES}{case.pk}/{path}/", api_body, format="json")
    assert response.status_code == 201, response.json()
    row = write(case=case, actor=user, data=data)
    api_row = type(row)._default_manager.get(pk=response.json()["id"])
    skip = {"id", "created_at", "updated_at", "archived"}
    assert {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields if f.attname not in skip} == {
        f.attname: getattr(api_row, f.attname) for f in row._meta.concrete_fields if f.attname not in skip}
    api_event = AuditEvent.objects.get(object_id=str(api_row.pk))
    event = AuditEvent.objects.get(object_id=str(row.pk))
    assert _event_shape(event) == _event_shape(api_event)
    assert event.changes == api_event.changes


def test_a_party_of_another_agency_is_refused_from_plain_python(world):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, lead=user)
    with pytest.raises(RuleViolation) as exc:
        services.party_add(case=case, actor=user, data={"entity": factories.person(world.b), "role": "boss"})
    assert exc.value.errors == {"role": ['"boss" is not a valid choice.'],
                                "entity": ["A party of a case is an entity of the case's agency."]}
