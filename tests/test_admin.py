"""The admin: same scoping as the API, the same rules, and every edit audited."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from cases.models import Case

from . import factories

PASSWORD = "correct horse battery"


@pytest.fixture
def staff_client():
    def make(user):
        user.is_staff = True
        user.save()
        client = Client()
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return make


def _case_form(case, **overrides):
    data = {
        "title": case.title, "summary": case.summary, "status": case.status, "priority": case.priority,
        "classification": case.classification, "unit": case.unit_id or "", "lead": case.lead_id or "",
        "opened_on": case.opened_on or "", "tags": ",".join(case.tags),
        "parties-TOTAL_FORMS": "0", "parties-INITIAL_FORMS": "0",
        "notes-TOTAL_FORMS": "0", "notes-INITIAL_FORMS": "0",
        "shares-TOTAL_FORMS": "0", "shares-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_staff_sees_only_cases_the_policy_allows(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    mine = factories.case(world.a, world.a1, title="Mine")
    other_unit = factories.case(world.a, world.a2, title="Other unit")
    foreign = factories.case(world.b, world.b1, title="Foreign")
    client = staff_client(user)
    page = client.get("/admin/cases/case/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Mine" in text and "Other unit" not in text and "Foreign" not in text
    assert client.get(f"/admin/cases/case/{mine.pk}/change/").status_code == 200
    for hidden in (other_unit, foreign):
        response = client.get(f"/admin/cases/case/{hidden.pk}/change/", follow=True)
        assert hidden.title not in response.content.decode()


def test_admin_edit_is_audited(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, title="Before")
    client = staff_client(user)
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, title="After"))
    assert response.status_code == 302, response.content.decode()[:2000]
    case.refresh_from_db()
    assert case.title == "After" and case.version == 2
    event = AuditEvent.objects.filter(object_id=str(case.pk), action="update").latest("at")
    assert event.actor == user.username
    assert event.changes["title"] == ["Before", "After"]


def test_admin_obeys_the_status_machine(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    case = factories.case(world.a, world.a1, status="open")
    client = staff_client(user)
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, status="closed"))
    assert response.status_code == 200  # the form comes back with an error
    case.refresh_from_db()
    assert case.status == "open"
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, status="investigating"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(object_id=str(case.pk), action="transition").exists()


def test_viewer_cannot_change_in_admin(world, staff_client):
    viewer = factories.user(world.a, "viewer", world.a1)
    case = factories.case(world.a, world.a1, title="Read only")
    client = staff_client(viewer)
    response = client.post(f"/admin/cases/case/{case.pk}/change/", _case_form(case, title="Changed"))
    assert response.status_code in (302, 403)
    case.refresh_from_db()
    assert case.title == "Read only"


def test_admin_creates_a_case_with_a_reference_and_audit(world, staff_client):
    user = factories.user(world.a, "investigator", world.a1)
    client = staff_client(user)
    data = _case_form(Case(title="New in admin", status="open", priority="medium", classification="restricted",
                           unit=world.a1, tags=[]))
    response = client.post("/admin/cases/case/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    case = Case.objects.get(title="New in admin")
    assert case.agency == world.a and case.reference.startswith("SSB-")
    assert AuditEvent.objects.filter(object_id=str(case.pk), action="create").exists()


def test_audit_events_are_read_only_in_admin(world, staff_client):
    auditor = factories.user(world.a, "auditor", world.a1)
    client = staff_client(auditor)
    assert client.get("/admin/audit/auditevent/").status_code == 200
    event = AuditEvent.objects.filter(chain=str(world.a.pk)).first()
    assert event is not None  # the auditor's own sign-in
    response = client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "view"})
    assert response.status_code == 403
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403


def test_admin_sign_in_is_audited_and_locks_out(world, settings):
    user = factories.user(world.a, "investigator", world.a1, is_staff=True)
    client = Client()
    for _ in range(settings.AUTH_LOCKOUT_THRESHOLD):
        assert not client.login(username=user.username, password="wrong")
    assert not client.login(username=user.username, password=PASSWORD)
    assert AuditEvent.objects.filter(actor=user.username, action="login_failed").count() == (
        settings.AUTH_LOCKOUT_THRESHOLD + 1
    )
