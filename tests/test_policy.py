"""The access policy knows every model by registration, and a read-write share edits content, not control."""

from __future__ import annotations

import pytest
from django.core.checks import Error
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.models import User
from cases.models import Case
from core import policy

from . import factories

# --- every owned model has an entry ----------------------------------------------------------


def test_the_project_passes_the_policy_check():
    assert policy.check_registrations() == []
    call_command("check")


@pytest.mark.parametrize("label", ["shipments.shipment", "cases.note", "imports.importjob", "cases.casecounter"])
def test_check_fails_for_an_owned_model_with_no_policy_entry(monkeypatch, label):
    monkeypatch.delitem(policy._VIEW, label)
    errors = policy.check_registrations()
    assert [e.id for e in errors] == ["policy.E001"]
    assert isinstance(errors[0], Error) and errors[0].obj._meta.label_lower == label
    with pytest.raises(SystemCheckError, match=r"policy\.E001"):
        call_command("check")


def test_every_app_registers_its_own_models():
    """No central list: each model's entry is made by the AppConfig of its app."""
    import inspect

    source = inspect.getsource(policy)
    assert "_register_all" not in source
    for label in ("entities.person", "shipments.shipment", "imports.importjob", "cases.note", "accounts.user"):
        assert policy.is_registered(label)
        assert label not in source


# --- what a read-write share may change ------------------------------------------------------

OWNER_ONLY = {
    "classification": lambda w: "unclassified",
    "unit": lambda w: "cyber",
    "lead": lambda w: "sup-a",
    "members": lambda w: ["sup-a"],
}
CONTENT = {
    "title": lambda w: "Renamed by a partner",
    "summary": lambda w: "More detail",
    "priority": lambda w: "critical",
    "tags": lambda w: ["partner"],
    "commodities": lambda w: ["gallium"],
}


@pytest.fixture
def shared(world):
    owner_investigator = factories.user(world.a, "investigator", world.a1, username="owner-inv")
    factories.user(world.a, "supervisor", world.a1, username="sup-a")
    case = factories.case(world.a, world.a1, lead=owner_investigator, status="investigating")
    factories.share(case, world.b, access="write")
    return case


def _callers(world):
    return {
        "owner investigator": User.objects.get(username="owner-inv"),  # the lead: moving the unit keeps it in reach
        "owner supervisor": factories.user(world.a, "supervisor", world.a1, username="owner-sup"),
        "write-share investigator": factories.user(world.b, "investigator", world.b1, username="partner-inv"),
        "write-share supervisor": factories.user(world.b, "supervisor", world.b1, username="partner-sup"),
        "write-share viewer": factories.user(world.b, "viewer", world.b1, username="partner-viewer"),
    }


EXPECTED_OWNER_ONLY = {"owner investigator": 200, "owner supervisor": 200, "write-share investigator": 403,
                       "write-share supervisor": 403, "write-share viewer": 403}
EXPECTED_CONTENT = {**EXPECTED_OWNER_ONLY, "write-share investigator": 200, "write-share supervisor": 200}


@pytest.mark.parametrize("field", [*OWNER_ONLY, *CONTENT])
def test_share_limits_matrix(client_for, world, shared, field):
    expected = EXPECTED_OWNER_ONLY if field in OWNER_ONLY else EXPECTED_CONTENT
    value = {**OWNER_ONLY, **CONTENT}[field](world)
    for name, user in _callers(world).items():
        before = Case.objects.get(pk=shared.pk)
        response = client_for(user).patch(f"/api/v1/cases/{shared.pk}/", {field: value}, format="json")
        assert response.status_code == expected[name], (name, field, response.json())
        after = Case.objects.get(pk=shared.pk)
        if response.status_code == 403:
            assert after.version == before.version, (name, field)
            if field in OWNER_ONLY:
                assert "owns the case" in response.json()["detail"] or name == "write-share viewer"
        # Put the case back for the next caller.
        Case.objects.filter(pk=shared.pk).update(classification="restricted", unit=world.a1,
                                                 lead=before.lead, title=before.title, priority=before.priority)
        shared.members.clear()


def test_a_partner_cannot_lower_the_classification_so_a_low_clearance_owner_reads_it(client_for, world, shared):
    """The finding: a write share PATCHed classification down to unclassified, and an owner's user with low
    clearance then read the case."""
    partner = factories.user(world.b, "investigator", world.b1, username="partner")
    low = factories.user(world.a, "investigator", world.a1, clearance="unclassified", username="low-a1")
    response = client_for(partner).patch(f"/api/v1/cases/{shared.pk}/", {"classification": "unclassified"},
                                         format="json")
    assert response.status_code == 403
    assert client_for(low).get(f"/api/v1/cases/{shared.pk}/").status_code == 404


@pytest.mark.parametrize(("start", "target", "partner_status"), [
    ("open", "investigating", 200),
    ("investigating", "referred", 200),
    ("referred", "closed", 403),
    ("investigating", "closed", 403),
])
def test_a_partner_moves_status_up_to_referred_only(client_for, world, shared, start, target, partner_status):
    Case.objects.filter(pk=shared.pk).update(status=start)
    partner = factories.user(world.b, "supervisor", world.b1, username="partner-sup")
    response = client_for(partner).patch(f"/api/v1/cases/{shared.pk}/", {"status": target}, format="json")
    assert response.status_code == partner_status, response.json()
    assert Case.objects.get(pk=shared.pk).status == (target if partner_status == 200 else start)


def test_a_partner_neither_archives_nor_reshares(client_for, world, shared):
    partner = client_for(factories.user(world.b, "supervisor", world.b1, username="partner-sup"))
    assert partner.delete(f"/api/v1/cases/{shared.pk}/").status_code == 403
    third = factories.agency("CGA", "Coast Guard")
    response = partner.post(f"/api/v1/cases/{shared.pk}/shares/", {"agency": third.code, "access": "read"},
                            format="json")
    assert response.status_code == 403
    assert not Case.objects.get(pk=shared.pk).archived


def test_a_partner_edits_parties_and_notes(client_for, world, shared):
    partner = client_for(factories.user(world.b, "investigator", world.b1, username="partner-inv"))
    response = partner.post(f"/api/v1/cases/{shared.pk}/notes/", {"body": "Seen at the port"}, format="json")
    assert response.status_code == 201, response.json()
    party = factories.party(shared, factories.person(world.a, "Owner's suspect"))
    response = partner.patch(f"/api/v1/cases/{shared.pk}/parties/{party.pk}/", {"custody_status": "detained"},
                             format="json")
    assert response.status_code == 200, response.json()


def test_the_admin_refuses_a_partner_changing_the_lead(world, shared):
    from cases.admin import CaseAdminForm

    partner = factories.user(world.b, "investigator", world.b1, username="partner-inv")

    class Request:
        user = partner

    form_class = type("Form", (CaseAdminForm,), {"request": Request()})
    data = {"title": shared.title, "summary": "", "status": shared.status, "priority": shared.priority,
            "classification": shared.classification, "unit": shared.unit_id,
            "lead": factories.user(world.a, "supervisor", world.a1, username="new-lead").pk,
            "members": [], "commodities": [], "opened_on": shared.opened_on, "tags": "[]"}
    form = form_class(data=data, instance=shared)
    assert not form.is_valid()
    assert "owns the case" in str(form.errors)


# --- scopes are built once per caller ---------------------------------------------------------


def test_a_callers_scope_is_built_once_and_follows_the_data(world, monkeypatch):
    """The second request of a caller reuses the scope built for the first (its SQL depends only on the caller),
    and a reused scope still reads the rows as they are now."""
    from entities.models import Person

    built = []
    build = policy._VIEW["entities.person"]

    def counted(user):
        built.append(user.pk)
        return build(user)

    monkeypatch.setitem(policy._VIEW, "entities.person", counted)
    inv = factories.user(world.a, "investigator", world.a1)
    first = factories.person(world.a, "First Person")
    assert list(policy.visible(inv, Person).values_list("pk", flat=True)) == [first.pk]
    second = factories.person(world.a, "Second Person")
    factories.person(world.b, "Another Agency's Person")
    assert sorted(policy.visible(inv, Person).values_list("name", flat=True)) == ["First Person", "Second Person"]
    assert policy.visible(inv, Person.objects.filter(pk=second.pk)).get() == second
    assert built == [inv.pk]


def test_a_kept_scope_follows_what_the_caller_is_now(world):
    """Whatever about the caller a scope depends on (role, unit, clearance, agency) picks another scope."""
    inv = factories.user(world.a, "investigator", world.a1, clearance="restricted")
    other_unit = factories.case(world.a, world.a2, classification="restricted")
    secret = factories.case(world.a, world.a1, classification="secret")
    assert list(policy.cases_visible(inv)) == []
    inv.role = "supervisor"  # an agency-wide reader
    assert list(policy.cases_visible(inv)) == [other_unit]
    inv.clearance = "secret"
    assert sorted(policy.cases_visible(inv), key=lambda c: c.reference) == sorted(
        [other_unit, secret], key=lambda c: c.reference)
    inv.role, inv.unit = "investigator", world.a2
    assert list(policy.cases_visible(inv)) == [other_unit]
    assert list(policy.cases_writable(inv, "case.close")) == []  # an investigator does not close
    inv.agency, inv.unit = world.b, world.b1
    assert list(policy.cases_visible(inv)) == []
