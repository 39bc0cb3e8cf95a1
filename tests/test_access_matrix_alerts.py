"""Access matrix over the alerts (API.md § Access, § Alerts), after tests/test_access_matrix.py and
tests/test_access_matrix_xref.py.

Each cell is one test; its expected outcome is read off the tables below, meant to be checked line by line against
API.md § Access: caller x an alert's relation to the caller x operation (retrieve, patch of its status, patch of
its case), and list membership per caller.

The general rules are tests/test_access_matrix.py's: anonymous → 401; an object the caller does not see → 404
(never 403) and absent from lists; an object the caller sees but may not change this way → 403, changing nothing;
otherwise the operation's success code. Where API.md is open, a comment marked "reading" says which reading a table
takes.

The data is built once per module inside a transaction rolled back at the end; each test runs in a savepoint of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from alerts.models import Alert
from audit.models import AuditEvent
from cases.models import Case

from . import factories
from .stages import built_once
from .test_access_matrix import CALLERS, RELATIONS, ROLES, N, Stage, Y, base_stage, listed_ids
from .test_access_matrix_xref import ANALYSTS, NOBODY

pytestmark = pytest.mark.django_db

# --- alerts: how each stands to the caller ---------------------------------------------------------------------
# Every caller sits in agency SSB, unit a1. An alert is SSB's own or ASB's, attached (its `case`) to a case of
# tests/test_access_matrix.py's RELATIONS, or to none.
#   relation:            (the alert's agency, the RELATIONS key of the case it is attached to, or None)
ALERT_RELATIONS: dict[str, tuple[str, str | None]] = {
    "own":               ("a", None),
    "own_other_unit":    ("a", "other_unit"),       # attached to a case of SSB's unit a2 that a1's users do not see
    "other_agency":      ("b", None),
    "other_agency_case": ("b", "other_agency"),     # attached to an ASB case not shared
    "shared_read":       ("b", "shared_read"),
    "shared_write":      ("b", "shared_write"),
    "shared_other_unit": ("b", "shared_other_unit"),  # shared with SSB's unit a2 only
}

# API.md § Access, Agency records (alerts among them): "visible to every user of the owning agency; to another
# agency only where linked to a case shared with it, read-only".
#                      viewer analyst investigator supervisor auditor agency_admin
ALERT_SEES: dict[str, tuple[bool, ...]] = {
    "own":               (Y,    Y,      Y,           Y,         Y,      Y),
    # reading: an agency record is its agency's whatever case it is attached to; the case's own content stays
    # hidden (the alert shows only the case's id).
    "own_other_unit":    (Y,    Y,      Y,           Y,         Y,      Y),
    "other_agency":      (N,    N,      N,           N,         N,      N),
    "other_agency_case": (N,    N,      N,           N,         N,      N),
    "shared_read":       (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_write":      (Y,    Y,      Y,           Y,         Y,      Y),
    "shared_other_unit": (N,    N,      N,           N,         N,      N),
}
# reading: a read-write share opens the case's content to writing, not the other agency's alerts attached to it
# (agency records are read-only to another agency, API.md § Access).
ALERT_ACCESS = {"own": "own", "own_other_unit": "own", "shared_read": "shared", "shared_write": "shared"}

# API.md § Access, Writes: "analyst: links, notes, match decisions, alert status"; viewer and auditor write nothing.
#   op            own agency's alert  another agency's, seen through a shared case  success
ALERT_RULES: dict[str, tuple[frozenset[str], frozenset[str], int]] = {
    "retrieve":    (frozenset(ROLES),  frozenset(ROLES),                             200),
    "patch":       (ANALYSTS,          NOBODY,                                       200),
    # attaching to a case of SSB's unit a1, which every a1 caller sees and analysts and up may write (notes)
    "attach":      (ANALYSTS,          NOBODY,                                       200),
}
ALERT_COLUMN = {"own": 0, "shared": 1}


def alert_expected(caller: str, relation: str, op: str) -> int:
    success = ALERT_RULES[op][2]
    if caller == "anonymous":
        return 401
    if caller == "superuser":  # "Superusers see and do everything."
        # but "A record references only records of its own agency": an ASB alert is not attached to an SSB case.
        return 400 if op == "attach" and ALERT_RELATIONS[relation][0] == "b" else success
    if not ALERT_SEES[relation][ROLES.index(caller)]:
        return 404
    allowed = ALERT_RULES[op][ALERT_COLUMN[ALERT_ACCESS[relation]]]
    assert isinstance(allowed, frozenset)
    return success if caller in allowed else 403


# --- the stage ---------------------------------------------------------------------------------------------------


@dataclass
class AlertStage(Stage):
    alerts: dict[str, Alert] = field(default_factory=dict)
    target_case: Case | None = None  # the SSB case of unit a1 that "attach" names


def build_stage() -> AlertStage:
    stage = base_stage(AlertStage)
    for number, (relation, (agency, case_relation)) in enumerate(ALERT_RELATIONS.items()):
        case = None
        if case_relation is not None:
            unit, _, shared = RELATIONS[case_relation]
            case = stage.add_case(unit, shared=shared)
        subject = (factories.shipment(stage.agencies[agency], reference=f"BL-MATRIX-{number}") if number % 2
                   else factories.organization(stage.agencies[agency], f"Matrix Trading {number}"))
        stage.alerts[relation] = factories.alert(subject, case=case)
    stage.target_case = stage.add_case("a1")
    return stage


@pytest.fixture(scope="module")
def stage(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build_stage) as built:
        yield built


def fingerprint(alert: Alert) -> tuple:
    return (Alert.objects.values_list("version", "status", "case", "status_changed_by").get(pk=alert.pk),
            AuditEvent.objects.filter(action="update", object_type="alert", object_id=str(alert.pk)).count())


MATRIX = [pytest.param(caller, relation, op, id=f"{caller}-{relation}-{op}")
          for caller in CALLERS for relation in ALERT_RELATIONS for op in ALERT_RULES]


@pytest.mark.parametrize(("caller", "relation", "op"), MATRIX)
def test_alert_matrix(stage, caller, relation, op):
    alert = stage.alerts[relation]
    want = alert_expected(caller, relation, op)
    before = fingerprint(alert)
    client = stage.client(caller)
    url = f"/api/v1/alerts/{alert.pk}/"
    body: dict[str, Any] = ({"status": "escalated"} if op == "patch"
                            else {"case": str(stage.target_case.pk)} if op == "attach" else {})
    response = client.patch(url, body, format="json") if body else client.get(url)

    assert response.status_code == want, (response.status_code, response.content[:300])
    if want == 400:
        assert list(response.json()) == ["case"]
    elif want > 400:
        assert "detail" in response.json()
    if want == 200:
        assert response.json()["id"] == str(alert.pk)
        assert response.json()["agency"] == ("SSB" if ALERT_RELATIONS[relation][0] == "a" else "ASB")
    if op != "retrieve" and want == 200:
        stored = Alert.objects.get(pk=alert.pk)
        if op == "patch":
            assert stored.status == "escalated" and stored.status_changed_by == stage.users[caller]
        else:
            assert stored.case_id == stage.target_case.pk
        assert fingerprint(alert)[1] == before[1] + 1, "a change is audited"
    elif op != "retrieve":
        assert fingerprint(alert) == before, "a refused change changed something"


@pytest.mark.parametrize("caller", CALLERS)
def test_alert_list(stage, caller):
    """The whole list, unfiltered: each of the matrix's alerts is in it exactly when the caller sees it."""
    response = stage.client(caller).get("/api/v1/alerts/", {"page_size": 500})
    if caller == "anonymous":
        assert response.status_code == 401
        return
    ids = listed_ids(response)
    listed = {relation: str(alert.pk) in ids for relation, alert in stage.alerts.items()}
    assert listed == {relation: alert_expected(caller, relation, "retrieve") == 200 for relation in ALERT_RELATIONS}


@pytest.mark.parametrize("caller", CALLERS)
def test_alert_list_by_subject_and_case(stage, caller):
    """Filtering by the subject or the case of an alert the caller may not see shows nothing (scoping comes before
    any filter)."""
    client = stage.client(caller)
    for relation, alert in stage.alerts.items():
        subject = alert.shipment_id or alert.entity_id
        for params in ({"subject": str(subject)}, {"case": str(alert.case_id)} if alert.case_id else None):
            if params is None:
                continue
            response = client.get("/api/v1/alerts/", params)
            if caller == "anonymous":
                assert response.status_code == 401
                continue
            assert (str(alert.pk) in listed_ids(response)) is (alert_expected(caller, relation, "retrieve") == 200)
