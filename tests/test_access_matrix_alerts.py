"""Access matrix over the alerts (API.md § Access, § Alerts): caller x an alert's relation to the caller x operation
(retrieve, patch of its status, patch of its case), and list membership per caller; read off the tables below.
The general rules and the stage built once per module are tests/test_access_matrix.py's; who sees and changes an
agency record, tests/test_access_matrix_index.py's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from alerts.models import Alert
from audit.models import AuditEvent
from cases.models import Case

from . import factories
from .access_routes import Route
from .stages import built_once
from .test_access_matrix import CALLERS, RELATIONS, Stage, base_stage, listed_ids
from .test_access_matrix_index import RECORD_RELATIONS, record_expected

pytestmark = pytest.mark.django_db

# Every caller sits in agency SSB, unit a1. An alert is an agency record attached (its `case`) to a case:
# tests/test_access_matrix_index.py's RECORD_RELATIONS, whose tables say who sees it (RECORD_SEES) and who changes it
# (RECORD_RULES' "patch", by RECORD_WRITERS["alerts"]: analysts and up, of the alert's own agency).
# The operations: retrieve; patch its status; attach it to a case of SSB's unit a1 (one every a1 caller sees, and
# analysts and up may write) — a change as its status is.
ALERT_OPS = {"retrieve": "retrieve", "patch": "patch", "attach": "patch"}
# The routes (tests/access_routes.py) this module exercises: by an operation of ALERT_OPS (test_alert_matrix crosses
# it with every caller and RECORD_RELATIONS) or by the test named.
ROUTES: dict[Route, str] = {("alert-list", "GET"): "test_alert_list", ("alert-detail", "GET"): "retrieve",
                            ("alert-detail", "PATCH"): "patch"}


def alert_expected(caller: str, relation: str, op: str) -> int:
    # "A record references only records of its own agency": even a superuser attaches an ASB alert to no SSB case.
    if op == "attach" and caller == "superuser" and RECORD_RELATIONS[relation][0] == "b":
        return 400
    return record_expected(caller, "alerts", relation, ALERT_OPS[op])


# --- the stage ---------------------------------------------------------------------------------------------------


@dataclass
class AlertStage(Stage):
    alerts: dict[str, Alert] = field(default_factory=dict)
    target_case: Case | None = None  # the SSB case of unit a1 that "attach" names


def build_stage() -> AlertStage:
    stage = base_stage(AlertStage)
    for number, (relation, (agency, case_relation)) in enumerate(RECORD_RELATIONS.items()):
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
          for caller in CALLERS for relation in RECORD_RELATIONS for op in ALERT_OPS]


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
        assert response.json()["agency"] == ("SSB" if RECORD_RELATIONS[relation][0] == "a" else "ASB")
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
    """The whole list, and the list filtered by each alert's subject and by its case: each of the matrix's alerts is
    in it exactly when the caller sees it (scoping comes before any filter)."""
    client = stage.client(caller)
    seen = {relation: alert_expected(caller, relation, "retrieve") == 200 for relation in RECORD_RELATIONS}
    queries: list[tuple[str | None, dict[str, Any]]] = [(None, {"page_size": 500})]
    for relation, alert in stage.alerts.items():
        queries += [(relation, {"subject": str(alert.shipment_id or alert.entity_id)}),
                    (relation, {"case": str(alert.case_id)})]
    for only, params in queries:
        response = client.get("/api/v1/alerts/", params)
        if caller == "anonymous":
            assert response.status_code == 401
            continue
        ids = listed_ids(response)
        shown = {relation: str(alert.pk) in ids for relation, alert in stage.alerts.items() if only in (None, relation)}
        assert shown == {relation: seen[relation] for relation in shown}, params
