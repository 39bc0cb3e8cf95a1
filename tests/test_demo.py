"""`manage.py load_demo`: idempotent, audited, and the access rules hold on the demo cases."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from accounts.models import User
from audit.models import AuditEvent, ChainHead
from audit.services import verify_chain
from cases.commodities import seed_commodities
from cases.management.commands.load_demo import CASES, DEMO_PASSWORD, GALLIUM_PORT, GREY_ORE
from cases.models import Case, CaseParty, CaseShare, Commodity, Note
from entities.models import Organization, Person

pytestmark = pytest.mark.django_db


def load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def demo_case(key: str) -> Case:
    spec = CASES[key]
    return Case.objects.get(agency__code=spec["agency"], title=spec["title"])


@pytest.fixture
def demo() -> str:
    # Commodities are seeded by a data migration; a transactional test's flush empties the table of a
    # reused test database, so put them back (idempotent) before loading.
    seed_commodities(Commodity)
    return load()


def test_load_demo_twice_changes_nothing(demo):
    assert DEMO_PASSWORD in demo
    assert "issue_token demo-investigator" in demo
    counts, events = row_counts(), AuditEvent.objects.count()
    heads = dict(ChainHead.objects.values_list("chain", "last_seq"))

    again = load()

    assert row_counts() == counts
    assert AuditEvent.objects.count() == events
    assert dict(ChainHead.objects.values_list("chain", "last_seq")) == heads
    assert "nothing changed" in again


def test_every_demo_record_is_audited_and_the_chains_hold(demo):
    records = [*Person.objects.all(), *Organization.objects.all(), *Case.objects.all(),
               *CaseParty.objects.all(), *Note.objects.all(), *CaseShare.objects.all()]
    assert records
    audited = set(AuditEvent.objects.filter(action__in=["create", "share"]).values_list("object_id", flat=True))
    assert {str(r.pk) for r in records} <= audited
    for chain in ChainHead.objects.values_list("chain", flat=True):
        assert verify_chain(chain).ok, chain


def test_accounts(demo):
    for prefix, agency, unit in (("demo", "SSB", "econ"), ("asb", "ASB", "ports")):
        for role in ("viewer", "analyst", "investigator", "supervisor", "auditor", "agency_admin"):
            user = User.objects.select_related("agency", "unit").get(username=f"{prefix}-{role}")
            assert user.agency is not None and user.unit is not None
            assert (user.agency.code, user.unit.code, user.role) == (agency, unit, role)
            assert user.is_staff and not user.is_superuser and user.check_password(DEMO_PASSWORD)
    assert User.objects.get(username="demo-analyst").clearance == "confidential"
    assert User.objects.get(username="asb-viewer").clearance == "restricted"
    assert User.objects.get(username="demo-supervisor").clearance == "secret"
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.agency is None and admin.check_password(DEMO_PASSWORD)
    assert list(User.objects.filter(is_superuser=True).values_list("username", flat=True)) == ["admin"]


def test_the_antimony_case(demo):
    case = demo_case(GREY_ORE)
    assert case.reference.startswith("SSB-")
    assert (case.classification, case.priority, case.status) == ("confidential", "high", "investigating")
    assert case.unit is not None and case.lead is not None
    assert (case.unit.code, case.lead.username) == ("econ", "demo-investigator")
    assert [u.username for u in case.members.all()] == ["demo-analyst"]
    assert [c.code for c in case.commodities.all()] == ["antimony"]
    assert case.parties.filter(custody_status="arrested", entity__type="person").count() == 8
    ringleader = case.parties.get(role="ringleader")
    assert ringleader.custody_status == "wanted"
    assert ringleader.entity.type == "person" and "罗建国" in ringleader.entity.names
    assert set(case.parties.filter(entity__kind="shell_company")
               .values_list("entity__jurisdiction", flat=True)) >= {"HK", "SG", "AE"}
    assert case.notes.filter(author__username="demo-investigator").count() >= 2


def test_access_to_the_demo_cases(demo, client_for):
    ssb_case, asb_case = demo_case(GREY_ORE), demo_case(GALLIUM_PORT)
    demo_inv = client_for(User.objects.get(username="demo-investigator"))
    asb_inv = client_for(User.objects.get(username="asb-investigator"))

    assert demo_inv.get(f"/api/v1/cases/{ssb_case.pk}/").status_code == 200
    assert asb_inv.get(f"/api/v1/cases/{ssb_case.pk}/").status_code == 404
    assert asb_inv.get(f"/api/v1/cases/{ssb_case.pk}/parties/").status_code == 404

    # ASB's case is shared read-only with SSB.
    shared = demo_inv.get(f"/api/v1/cases/{asb_case.pk}/")
    assert shared.status_code == 200, shared.json()
    assert shared.json()["agency"] == "ASB"
    listed = {c["id"] for c in demo_inv.get("/api/v1/cases/", {"page_size": 500}).json()["results"]}
    assert {str(ssb_case.pk), str(asb_case.pk)} <= listed
    assert demo_inv.get(f"/api/v1/cases/{asb_case.pk}/parties/").json()["count"] == 4
    edit = demo_inv.patch(f"/api/v1/cases/{asb_case.pk}/", {"title": "Taken over"}, format="json")
    assert edit.status_code == 403
    note = demo_inv.post(f"/api/v1/cases/{asb_case.pk}/notes/", {"body": "SSB was here"}, format="json")
    assert note.status_code == 403
    asb_case.refresh_from_db()
    assert asb_case.title == CASES[GALLIUM_PORT]["title"]
    assert asb_inv.get(f"/api/v1/cases/{asb_case.pk}/").status_code == 200

    # Clearance still applies: the viewer (restricted) does not see the confidential case.
    viewer = client_for(User.objects.get(username="demo-viewer"))
    assert viewer.get(f"/api/v1/cases/{ssb_case.pk}/").status_code == 404
